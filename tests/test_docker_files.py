"""Static checks of docker/ (no Docker engine needed): what the images install, how the compose file
wires the services, and that every name in them matches the code (settings, extras, pins, docs).

`scripts/lint_dockerfiles.sh` runs these plus hadolint and the compose-spec schema. PyYAML is used
when installed; otherwise a small parser for the YAML subset the compose files are written in.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import re
import threading
import tomllib
from pathlib import Path
from typing import Any

import pytest

from captionbot.settings import Settings, settings_table_markdown

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILES = {name: DOCKER / f"{name}.Dockerfile" for name in ("bot", "worker-cpu", "worker-cuda")}
CAPTIONBOT_SERVICES = ("migrate", "bot", "worker", "learner")
# ${...} variables of the compose files that are compose knobs, not captionbot settings.
COMPOSE_KNOBS = {"POSTGRES_PASSWORD", "IMAGE_TAG", "WORKER_REPLICAS", "MODELS_DIR", "WEB_PORT"}
TORCH_EXTRAS = {"model", "train", "efficientnet", "all"}


# --- helpers: settings, pyproject ---------------------------------------------------------------


def settings_env_vars() -> set[str]:
    return {name for row in Settings.describe() for name in row.env_var.split(" or ")}


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _req_name(req: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", req).group(0).lower().replace("_", "-")


def extra_requirements(extras: list[str]) -> list[str]:
    """Every requirement string the given extras bring in (self-references `captionbot[...]` followed)."""
    optional = pyproject()["project"]["optional-dependencies"]
    seen: set[str] = set()
    out: list[str] = []
    todo = list(extras)
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        assert extra in optional, f"unknown extra {extra!r}"
        seen.add(extra)
        for req in optional[extra]:
            if _req_name(req) == "captionbot":
                todo += re.search(r"\[(.*)\]", req).group(1).split(",")
            else:
                out.append(req)
    return out


# --- helpers: Dockerfile ------------------------------------------------------------------------


def dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    """Instructions ``(KEYWORD, arguments)`` per stage; index 0 holds what comes before the first FROM."""
    stages: list[list[tuple[str, str]]] = [[]]
    logical = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and logical):  # comments may sit inside continuations
            continue
        logical += " " + line
        if logical.endswith("\\"):
            logical = logical[:-1]
            continue
        text, logical = logical.strip(), ""
        if not text:
            continue
        keyword, _, args = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, args.strip()))
    return stages


def args_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    out = {}
    for keyword, args in stage:
        if keyword == "ARG":
            name, _, default = args.partition("=")
            out[name] = default.strip('"')
    return out


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    out = {}
    for keyword, args in stage:
        if keyword == "ENV":
            for name, value in re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)', args):
                out[name] = value.strip('"')
    return out


def run_lines(stage: list[tuple[str, str]]) -> list[str]:
    return [args for keyword, args in stage if keyword == "RUN"]


# --- helpers: YAML ------------------------------------------------------------------------------

_KEY = re.compile(r'^([A-Za-z0-9_.-]+|"[^"]*"):(?:\s+(.*))?$')


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'" and (i == 0 or line[i - 1] in " -:[,"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _scalar(text: str) -> Any:
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        assert text.endswith("'") and len(text) > 1, text
        return text[1:-1].replace("''", "'")
    if text[0] in "[{":
        return json.loads(text)  # flow collections: only the JSON-compatible ones
    if text[0] in "&*!|>%@`":
        raise ValueError(f"YAML feature not supported by the mini parser: {text!r}")
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("null", "~"):
        return None
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    if re.fullmatch(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?", text):
        return float(text)
    return text


def _is_item(text: str) -> bool:
    return text == "-" or text.startswith("- ")


def _block(lines: list[tuple[int, str]], pos: int, indent: int) -> tuple[Any, int]:
    if _is_item(lines[pos][1]):
        return _seq(lines, pos, indent)
    return _map(lines, pos, indent)


def _child(lines: list[tuple[int, str]], pos: int, indent: int) -> tuple[Any, int]:
    """The block under a ``key:`` / ``-`` line at ``indent`` (None when there is none)."""
    if pos < len(lines):
        nxt_indent, nxt = lines[pos]
        if nxt_indent > indent or (nxt_indent == indent and _is_item(nxt)):
            return _block(lines, pos, nxt_indent)
    return None, pos


def _map(lines: list[tuple[int, str]], pos: int, indent: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while pos < len(lines) and lines[pos][0] == indent and not _is_item(lines[pos][1]):
        match = _KEY.match(lines[pos][1])
        if not match:
            raise ValueError(f"not a `key: value` line: {lines[pos][1]!r}")
        key = json.loads(match[1]) if match[1].startswith('"') else match[1]
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        if match[2]:
            out[key], pos = _scalar(match[2]), pos + 1
        else:
            out[key], pos = _child(lines, pos + 1, indent)
    if pos < len(lines) and lines[pos][0] > indent:
        raise ValueError(f"unexpected indentation: {lines[pos][1]!r}")
    return out, pos


def _seq(lines: list[tuple[int, str]], pos: int, indent: int) -> tuple[list[Any], int]:
    out: list[Any] = []
    while pos < len(lines) and lines[pos][0] == indent and _is_item(lines[pos][1]):
        rest = lines[pos][1][1:]
        item = rest.lstrip()
        if not item:
            value, pos = _child(lines, pos + 1, indent)
        elif _KEY.match(item):  # "- key: value" starts a mapping at the key's column
            column = indent + 1 + len(rest) - len(item)
            lines[pos] = (column, item)
            value, pos = _map(lines, pos, column)
        else:
            value, pos = _scalar(item), pos + 1
        out.append(value)
    return out, pos


def mini_yaml(text: str) -> Any:
    """Block mappings and sequences, plain/quoted scalars, JSON-style flow lists, comments."""
    lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        line = _strip_comment(raw).rstrip()
        if not line.strip():
            continue
        stripped = line.lstrip(" ")
        if stripped.startswith("\t"):
            raise ValueError("tabs in indentation")
        lines.append((len(line) - len(stripped), stripped))
    if not lines:
        return None
    value, pos = _block(lines, 0, lines[0][0])
    if pos != len(lines):
        raise ValueError(f"could not parse from: {lines[pos][1]!r}")
    return value


def load_yaml(path: Path) -> Any:
    try:
        import yaml
    except ImportError:
        return mini_yaml(path.read_text())
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(DOCKER / "compose.yaml")


@pytest.fixture(scope="module")
def compose_gpu() -> dict[str, Any]:
    return load_yaml(DOCKER / "compose.gpu.yaml")


# --- the YAML reader itself -----------------------------------------------------------------------


def test_mini_yaml_reads_the_subset() -> None:
    text = """
# comment
a: 1
b:
  - x
  - "y # not a comment"
  - key: v   # comment
    other: [\"CMD\", \"ping\"]
c:
- 'it''s'
- true
d: redis://redis:6379/0
e:
f: ${X:-1}
"""
    assert mini_yaml(text) == {
        "a": 1,
        "b": ["x", "y # not a comment", {"key": "v", "other": ["CMD", "ping"]}],
        "c": ["it's", True],
        "d": "redis://redis:6379/0",
        "e": None,
        "f": "${X:-1}",
    }
    with pytest.raises(ValueError):
        mini_yaml("a: &anchor 1\nb: *anchor\n")
    with pytest.raises(ValueError):
        mini_yaml("a: 1\n   b: 2\n")


@pytest.mark.parametrize("name", ["compose.yaml", "compose.gpu.yaml"])
def test_mini_yaml_agrees_with_pyyaml(name: str) -> None:
    yaml = pytest.importorskip("yaml")
    text = (DOCKER / name).read_text()
    assert mini_yaml(text) == yaml.safe_load(text)


# --- Dockerfiles ----------------------------------------------------------------------------------


def _install_extras(path: Path) -> list[str]:
    stages = dockerfile_stages(path)
    build = stages[1]
    installs = [r for r in run_lines(build) if re.search(r'pip install [^&]*"\.\[\$\{EXTRAS\}\]"', r)]
    assert installs, f'{path.name}: the project is installed with pip install ".[${{EXTRAS}}]"'
    return args_of(build)["EXTRAS"].split(",")


def test_bot_image_installs_no_torch() -> None:
    path = DOCKERFILES["bot"]
    extras = _install_extras(path)
    assert set(extras) >= {"telegram", "discord", "postgres", "redis"}
    assert not set(extras) & TORCH_EXTRAS, f"the bot image must not install {set(extras) & TORCH_EXTRAS}"
    names = {_req_name(r) for r in extra_requirements(extras) + pyproject()["project"]["dependencies"]}
    assert not names & {"torch", "torchvision"}, "an extra of the bot image pulls torch in"
    assert not names & {"rapidocr-onnxruntime", "onnxruntime", "opencv-python"}, "the OCR engine is the worker's"
    text = path.read_text()
    assert "torch" not in " ".join(run_lines(dockerfile_stages(path)[1])).replace(
        "find_spec('torch') is not None", ""
    ), "the bot image installs torch explicitly"
    # The build-time guard, in the same RUN as the install.
    [install] = [r for r in run_lines(dockerfile_stages(path)[1]) if "pip install" in r]
    assert "importlib.util.find_spec('torch') is not None" in install
    assert "--extra-index-url" not in text and "download.pytorch.org" not in text


@pytest.mark.parametrize("name", ["worker-cpu", "worker-cuda"])
def test_worker_images_install_model_postgres_redis_and_the_ocr_engine(name: str) -> None:
    extras = _install_extras(DOCKERFILES[name])
    assert set(extras) >= {"model", "postgres", "redis", "ocr"}
    # OpenCV without libGL (not in the slim base image), and a build that fails if the engine can't load.
    [install] = [r for r in run_lines(dockerfile_stages(DOCKERFILES[name])[1]) if '".[${EXTRAS}]"' in r]
    assert "opencv-python-headless" in install and "TextReader()" in install


@pytest.mark.parametrize("name", ["worker-cpu", "worker-cuda"])
def test_worker_torch_pins_match_pyproject(name: str) -> None:
    model = {_req_name(r): r.replace(" ", "") for r in pyproject()["project"]["optional-dependencies"]["model"]}
    build = dockerfile_stages(DOCKERFILES[name])[1]
    args = args_of(build)
    assert args["TORCH_SPEC"] == model["torch"], "TORCH_SPEC differs from pyproject's model extra"
    assert args["TORCHVISION_SPEC"] == model["torchvision"], "TORCHVISION_SPEC differs from pyproject"
    torch_runs = [r for r in run_lines(build) if '"${TORCH_SPEC}"' in r and '"${TORCHVISION_SPEC}"' in r]
    assert torch_runs and '--index-url "${TORCH_INDEX_URL}"' in torch_runs[0]
    expected_index = {
        "worker-cpu": "https://download.pytorch.org/whl/cpu",  # CPU wheels: no CUDA libraries
        "worker-cuda": "https://pypi.org/simple",  # default wheels, CUDA bundled
    }[name]
    assert args["TORCH_INDEX_URL"] == expected_index


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_dockerfile_essentials(name: str) -> None:
    stages = dockerfile_stages(DOCKERFILES[name])
    assert not stages[0] or all(k == "ARG" for k, _ in stages[0])
    assert args_of(stages[0])["PYTHON_IMAGE"] == "python:3.11-slim"
    assert len(stages) == 3, "two stages: build, then the runtime image"
    assert all(
        stage[0] == ("FROM", "${PYTHON_IMAGE}" + (" AS build" if i == 1 else ""))
        for i, stage in enumerate(stages[1:], 1)
    )
    final = stages[-1]
    keywords = [k for k, _ in final]
    assert ("COPY", "--from=build /opt/venv /opt/venv") in final
    # Non-root: a numeric uid other than 0, set before the process starts.
    [user] = [a for k, a in final if k == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    assert re.search(rf"useradd [^&]*--uid {uid}\b", " ".join(run_lines(final)))
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    # Health: the copied script, on the metrics port the settings default to.
    [health] = [a for k, a in final if k == "HEALTHCHECK"]
    assert "/usr/local/bin/captionbot-healthcheck" in health
    assert ("COPY", "docker/healthcheck.py /usr/local/bin/captionbot-healthcheck") in final
    env = env_of(final)
    default_port = str(Settings.model_fields["metrics_port"].default)
    assert env["CAPTIONBOT_METRICS_PORT"] == default_port
    assert default_port in [p for k, a in final if k == "EXPOSE" for p in a.split()]
    assert set(k for k in env if k.startswith("CAPTIONBOT_")) <= settings_env_vars()
    assert env["CAPTIONBOT_DATA_DIR"] == "/data"
    if "CAPTIONBOT_DEVICE" in env:
        Settings(_env_file=None, device=env["CAPTIONBOT_DEVICE"])  # a valid device
    assert ("ENTRYPOINT", '["captionbot"]') in final
    cmd = {"bot": '["bot"]', "worker-cpu": '["worker"]', "worker-cuda": '["worker"]'}[name]
    assert ("CMD", cmd) in final


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_dockerfiles_copy_every_package(name: str) -> None:
    """Every top-level package pyproject installs is copied into the build stage."""
    build = dockerfile_stages(DOCKERFILES[name])[1]
    copied = {a.split()[0].rstrip("/") for k, a in build if k == "COPY" and not a.startswith("--")}
    patterns = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").is_file() or (p.is_dir() and p.name == "migrations")
        if any(re.fullmatch(pat.replace("*", ".*"), p.name) for pat in patterns)
    }
    assert {"captionbot", "captioner", "migrations"} <= packages
    assert packages <= copied, f"not copied into the image: {packages - copied}"
    readme = pyproject()["project"].get("readme")
    assert {"pyproject.toml", readme} <= {w for k, a in build if k == "COPY" for w in a.split()}


# --- .dockerignore ----------------------------------------------------------------------------------


def _dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(regex)))
    return rules


def in_build_context(path: str) -> bool:
    """Docker's rule: the last pattern matching the path (or one of its parent folders) decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negate, regex in _dockerignore():
        if any(regex.fullmatch(p) for p in prefixes):
            included = negate
    return included


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    for path in (
        ".env",
        "docker/.env",
        ".venv/bin/python",
        ".git/config",
        "data/captionbot.db",
        "data/images/ab/cd/abcd",
        "runs/flickr8k/last.pt",
        "captionbot/__pycache__/cli.cpython-311.pyc",
        "tests/test_docker_files.py",
        "benchmarks/pipeline.py",
        "captionbot/dev.db",
    ):
        assert not in_build_context(path), f"{path} would be sent to the Docker build"


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_dockerignore_lets_every_copy_source_in(name: str) -> None:
    for stage in dockerfile_stages(DOCKERFILES[name])[1:]:
        for keyword, args in stage:
            if keyword != "COPY" or args.startswith("--from"):
                continue
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                assert in_build_context(source.rstrip("/")), f"COPY {source}: excluded by .dockerignore"
    assert in_build_context("captioner/assets/captionbot-flickr8k.pt"), "the shipped checkpoint is package data"


# --- compose ------------------------------------------------------------------------------------------


def _condition(service: dict[str, Any], dependency: str) -> str | None:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return "service_started" if dependency in deps else None
    entry = deps.get(dependency)
    return None if entry is None else (entry or {}).get("condition", "service_started")


def test_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "migrate", "bot", "worker"}
    assert services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["healthcheck"]["test"]
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert _condition(migrate, "postgres") == "service_healthy"
    assert migrate.get("restart") in (None, "no")
    for name in ("bot", "worker"):
        assert _condition(services[name], "migrate") == "service_completed_successfully", name
        assert _condition(services[name], "redis") == "service_healthy", name
    assert services["bot"]["command"] == ["bot"]
    assert services["worker"]["command"] == ["worker"]


def test_learner_runs_the_worker_image(compose: dict[str, Any], compose_gpu: dict[str, Any]) -> None:
    services = compose["services"]
    learner, worker = services["learner"], services["worker"]
    assert learner["command"] == ["learner"]
    assert learner["image"] == worker["image"] and learner["build"] == worker["build"]
    assert _condition(learner, "migrate") == "service_completed_successfully"
    assert learner["environment"]["CAPTIONBOT_DATABASE_URL"] == worker["environment"]["CAPTIONBOT_DATABASE_URL"]
    assert learner["environment"]["CAPTIONBOT_DATA_DIR"] == worker["environment"]["CAPTIONBOT_DATA_DIR"]
    # Candidates are written under the data dir: the workers must see the same volume to load them.
    assert "captionbot-data:/data" in learner["volumes"] and "captionbot-data:/data" in worker["volumes"]
    assert learner["healthcheck"]["disable"] is True, "no metrics port to ask"
    assert "container_name" not in learner
    gpu = compose_gpu["services"]["learner"]
    assert gpu["image"] == compose_gpu["services"]["worker"]["image"]
    assert gpu["environment"]["CAPTIONBOT_DEVICE"] == "cuda"


def test_compose_images_build_from_the_dockerfiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {
        "migrate": "docker/bot.Dockerfile",
        "bot": "docker/bot.Dockerfile",
        "worker": "docker/worker-cpu.Dockerfile",
    }
    for name, dockerfile in expected.items():
        build = services[name]["build"]
        assert (DOCKER / build["context"]).resolve() == ROOT, name
        assert build["dockerfile"] == dockerfile, name
        assert (ROOT / dockerfile).is_file()
    assert services["migrate"]["image"] == services["bot"]["image"], "migrate runs the bot image"


def test_worker_is_scalable(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker, "a container_name stops `--scale worker=N`"
    assert "replicas" in worker.get("deploy", {})
    # A fixed host port would collide between replicas.
    for port in worker.get("ports", []):
        assert ":" not in str(port), f"worker publishes a fixed host port: {port}"


def test_bot_and_worker_share_the_image_store(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounts = {}
    for name in ("bot", "worker"):
        env = services[name]["environment"]
        data_dir = env.get("CAPTIONBOT_DATA_DIR")
        store = env.get("CAPTIONBOT_IMAGE_STORE_DIR") or f"{data_dir}/images"
        found = [
            v.split(":")[0]
            for v in services[name]["volumes"]
            if isinstance(v, str) and store.startswith(v.split(":")[1].rstrip("/") + "/")
        ]
        assert found, f"{name}: the image store {store} is not on a volume"
        assert found[0] in compose["volumes"], f"{name}: {found[0]} is not a named volume"
        mounts[name] = (found[0], store)
    assert mounts["bot"] == mounts["worker"], "bot writes photos where the worker reads them"


def test_compose_settings(compose: dict[str, Any], compose_gpu: dict[str, Any]) -> None:
    known = settings_env_vars()
    for doc in (compose, compose_gpu):
        for name in CAPTIONBOT_SERVICES:
            env = doc["services"].get(name, {}).get("environment", {})
            assert isinstance(env, dict)
            assert set(env) <= known, f"{name}: not a setting: {set(env) - known}"
    services = compose["services"]
    for name in ("bot", "worker"):
        env = services[name]["environment"]
        assert env["CAPTIONBOT_BROKER_URL"] == "redis://redis:6379/0"
        assert env["CAPTIONBOT_DATABASE_URL"] == services["migrate"]["environment"]["CAPTIONBOT_DATABASE_URL"]
        assert env["CAPTIONBOT_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["CAPTIONBOT_DATABASE_URL"]
        assert services[name]["env_file"], f"{name}: tokens and settings come from an env file"
    assert "TELEGRAM_BOT_TOKEN" not in services["bot"]["environment"], "tokens belong in the env file"


def test_compose_interpolation_is_documented() -> None:
    """Every ${VAR} of the compose files is a setting or a compose knob listed in env.example."""
    example = (DOCKER / "env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.M))
    known = settings_env_vars()
    assert listed <= known | COMPOSE_KNOBS, f"env.example: unknown names {listed - known - COMPOSE_KNOBS}"
    assert {"TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "POSTGRES_PASSWORD"} <= listed
    # Tokens are examples only: an empty token would count as set.
    assert not re.search(r"^(TELEGRAM|DISCORD)_BOT_TOKEN=", example, re.M)
    used = set()
    for name in ("compose.yaml", "compose.gpu.yaml"):
        used |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (DOCKER / name).read_text()))
    assert used <= listed, f"not in env.example: {used - listed}"
    assert used <= COMPOSE_KNOBS


def test_gpu_override(compose_gpu: dict[str, Any]) -> None:
    worker = compose_gpu["services"]["worker"]
    assert worker["build"]["dockerfile"] == "docker/worker-cuda.Dockerfile"
    [device] = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert Settings(_env_file=None, device=worker["environment"]["CAPTIONBOT_DEVICE"]).device.startswith("cuda")
    assert "container_name" not in worker


# --- healthcheck script -------------------------------------------------------------------------------


def _healthcheck_module() -> Any:
    spec = importlib.util.spec_from_file_location("captionbot_docker_healthcheck", DOCKER / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_healthcheck_reads_the_metrics_port_setting() -> None:
    assert "CAPTIONBOT_METRICS_PORT" in settings_env_vars()
    assert _healthcheck_module().DEFAULT_PORT == str(Settings.model_fields["metrics_port"].default)


def test_healthcheck_script(monkeypatch: pytest.MonkeyPatch) -> None:
    status = {"code": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            code = status["code"] if self.path == "/healthz" else 404
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}' if code == 200 else b'{"status": "unavailable"}')

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    health = _healthcheck_module()
    try:
        monkeypatch.setenv("CAPTIONBOT_METRICS_PORT", str(server.server_address[1]))
        assert health.main() == 0
        status["code"] = 503
        assert health.main() == 1
    finally:
        server.shutdown()
        server.server_close()
    assert health.main() == 1  # nothing listening
    monkeypatch.setenv("CAPTIONBOT_METRICS_PORT", "0")
    assert health.main() == 0  # endpoint switched off


# --- docs -----------------------------------------------------------------------------------------------


def test_configuration_doc_has_the_current_settings_table() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert settings_table_markdown() in doc, (
        "docs/configuration.md is out of date: paste the output of\n"
        "  python -c 'from captionbot.settings import settings_table_markdown as t; print(t())'"
    )


def test_deployment_doc_mentions_the_files() -> None:
    doc = (ROOT / "docs" / "deployment.md").read_text()
    for needle in (
        "docker/compose.yaml",
        "docker/compose.gpu.yaml",
        "captionbot db upgrade",
        "scripts/lint_dockerfiles.sh",
        "--scale worker=",
    ):
        assert needle in doc, needle
