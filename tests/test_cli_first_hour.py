"""What a newcomer runs first says clearly what is wrong: one line, no traceback, a non-zero exit;
and `captionbot caption` writes its lines in the order the photos were given."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.tiny_model import make_tiny_checkpoint

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]


def captionbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "captionbot_cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_cuda_without_a_gpu_says_so_and_how_to_choose_the_cpu(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    photo = tmp_path / "p.png"
    Image.new("RGB", (40, 30), "red").save(photo)
    done = captionbot("caption", str(photo), "--device", "cuda", "--model", str(make_tiny_checkpoint()))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: CUDA is not available on this machine: use --device cpu (or CAPTIONBOT_DEVICE=cpu), or auto"
    ]
    assert "Traceback" not in done.stderr + done.stdout


def test_json_lines_come_in_the_order_the_photos_were_given(tmp_path: Path) -> None:
    good1, good2, not_image = tmp_path / "a.png", tmp_path / "c.png", tmp_path / "b.txt"
    Image.new("RGB", (40, 30), "red").save(good1)
    Image.new("RGB", (40, 30), "blue").save(good2)
    not_image.write_text("not a photo")
    given = [good1, tmp_path / "missing.jpg", not_image, good2]
    done = captionbot(
        "caption",
        *map(str, given),
        "--json",
        "--no-read-text",
        "--batch-size",
        "2",
        "--model",
        str(make_tiny_checkpoint()),
    )
    assert done.returncode == 1  # some photos could not be read
    rows = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [r["image"] for r in rows] == [str(p) for p in given]
    assert ["caption" in r for r in rows] == [True, False, False, True]
    assert rows[1]["error"] == "no such file" and "Traceback" not in done.stderr


def test_db_upgrade_says_what_it_applied(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTIONBOT_")} | {
        "CAPTIONBOT_DATA_DIR": str(tmp_path)
    }

    def upgrade() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "captionbot_cli", "db", "upgrade"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    from captionbot.storage.db import head_revision

    assert upgrade() == f"database schema upgraded from revision none (empty database) to {head_revision()}"
    assert upgrade() == f"database schema already at revision {head_revision()} (the latest): nothing to apply"


@pytest.mark.parametrize("command", ["run", "bot"])
def test_nothing_to_serve_is_refused_with_the_variables_to_set(tmp_path: Path, command: str) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTIONBOT_") and "TOKEN" not in k} | {
        "CAPTIONBOT_DATA_DIR": str(tmp_path),
        "CAPTIONBOT_WEB_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "captionbot_cli", command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: nothing to serve: set TELEGRAM_BOT_TOKEN and/or DISCORD_BOT_TOKEN for the bots,"
        " or CAPTIONBOT_WEB_PORT for the web page"
    ]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTIONBOT_") and "TOKEN" not in k}
    return (
        env | {"CAPTIONBOT_DATA_DIR": str(tmp_path), "CAPTIONBOT_WEB_PORT": "0", "CAPTIONBOT_METRICS_PORT": "0"} | extra
    )


@pytest.mark.parametrize(
    ("args", "extra", "first_line"),
    [
        (
            ["run"],
            {"CAPTIONBOT_BATCH_SIZE": "abc"},
            "error: CAPTIONBOT_BATCH_SIZE: Input should be a valid integer, unable to parse string as an integer"
            " (got 'abc')",
        ),
        (
            ["db", "upgrade"],
            {"CAPTIONBOT_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nowhere"},
            "error: a server could not be reached",
        ),
        (["train", "--data", "no-such-folder"], {}, "error: no dataset at no-such-folder"),
        (
            ["bot"],
            {"CAPTIONBOT_BROKER_URL": "redis://127.0.0.1:9/0", "CAPTIONBOT_WEB_PORT": "0", "DISCORD_BOT_TOKEN": "x"},
            "error: can't reach the Redis broker",
        ),
    ],
)
def test_start_up_problems_are_one_or_two_lines_without_a_traceback(
    tmp_path: Path, args: list[str], extra: dict[str, str], first_line: str
) -> None:
    if args == ["bot"]:  # a database at the latest schema, so that the broker is what fails
        ready = clean_env(tmp_path)
        subprocess.run([sys.executable, "-m", "captionbot_cli", "db", "upgrade"], cwd=tmp_path, env=ready, check=True)
    done = subprocess.run(
        [sys.executable, "-m", "captionbot_cli", *args],
        cwd=tmp_path,
        env=clean_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stderr.strip().splitlines() if not line[:4].isdigit()]  # not log lines
    assert done.returncode == 2 and 1 <= len(lines) <= 2, done.stderr[-2000:]
    assert lines[0].startswith(first_line) and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()  # a failed start leaves no empty run folder
    with_debug = subprocess.run(
        [sys.executable, "-m", "captionbot_cli", "--debug", *args],
        cwd=tmp_path,
        env=clean_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert with_debug.returncode != 0
    if args[0] != "train":  # train reports its own data problem; the others raise
        assert "Traceback" in with_debug.stderr


def test_a_missing_extra_names_the_install_and_a_bad_secret_is_not_echoed() -> None:
    from pydantic import ValidationError

    from captionbot.settings import Settings
    from captionbot_cli.errors import describe

    missing = ModuleNotFoundError("No module named 'asyncpg'", name="asyncpg")
    assert describe(missing) == [
        "error: this needs the package 'asyncpg', which is not installed: pip install 'captionbot[postgres]'"
    ]
    assert describe(ModuleNotFoundError("No module named 'leftpad'", name="leftpad")) is None
    with pytest.raises(ValidationError) as bad:
        Settings(database_url=123, batch_size=0)  # type: ignore[arg-type]
    lines = describe(bad.value)
    assert lines is not None and any(line.startswith("error: CAPTIONBOT_BATCH_SIZE:") for line in lines)
    assert not any("123" in line for line in lines)  # URLs may hold passwords: never echoed


def run_on_a_fresh_database(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`captionbot run` on a just-upgraded database, so that what fails is what the test set up."""
    subprocess.run([sys.executable, "-m", "captionbot_cli", "db", "upgrade"], cwd=tmp_path, env=env, check=True)
    return subprocess.run(
        [sys.executable, "-m", "captionbot_cli", "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_no_way_to_telegram_is_two_lines_naming_what_to_check(tmp_path: Path) -> None:
    env = clean_env(
        tmp_path,
        TELEGRAM_BOT_TOKEN="123:not-a-real-token",
        CAPTIONBOT_TELEGRAM_API_BASE_URL="http://127.0.0.1:9/bot",  # nothing listens there
        CAPTIONBOT_MODEL_PATH=str(make_tiny_checkpoint()),
        CAPTIONBOT_DEVICE="cpu",
        CAPTIONBOT_READ_TEXT="0",
        CAPTIONBOT_METRICS_PORT="0",
    )
    done = run_on_a_fresh_database(tmp_path, env)
    errors = [line for line in done.stderr.splitlines() if not line[:4].isdigit()]  # past the log lines
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert errors[0].startswith("error: can't reach Telegram's servers") and len(errors) == 2
    assert "not-a-real-token" not in done.stderr + done.stdout


def test_a_port_in_use_is_named_with_the_settings_to_change(tmp_path: Path) -> None:
    import socket

    from tests.web.browser import free_port

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = clean_env(
            tmp_path,
            CAPTIONBOT_METRICS_PORT=str(port),
            CAPTIONBOT_WEB_PORT=str(free_port()),
            CAPTIONBOT_MODEL_PATH=str(make_tiny_checkpoint()),
            CAPTIONBOT_DEVICE="cpu",
            CAPTIONBOT_READ_TEXT="0",
        )
        done = run_on_a_fresh_database(tmp_path, env)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert errors == [
        f"error: port {port} is already in use (another captionbot?): stop what holds it, or choose another port"
    ]


def test_a_missing_extra_at_start_names_the_pip_install(tmp_path: Path) -> None:
    """PostgreSQL without asyncpg installed (the `postgres` extra), as a bot-only install may be."""
    script = (
        "import sys; sys.modules['asyncpg'] = None  # as if it were not installed\n"
        "from captionbot_cli.main import main; sys.argv = ['captionbot', 'db', 'upgrade']; main()"
    )
    env = clean_env(tmp_path, CAPTIONBOT_DATABASE_URL="postgresql://nobody@127.0.0.1:9/x")
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: this needs the package 'asyncpg', which is not installed: pip install 'captionbot[postgres]'"
    ]


def test_a_repeating_failure_is_logged_as_one_line_without_the_statements_parameters() -> None:
    from sqlalchemy.exc import OperationalError

    from captionbot.observability import one_line

    lost = OperationalError("INSERT INTO captions (text) VALUES (?)", ("a private caption",), Exception("server gone"))
    assert one_line(lost) == "OperationalError: (builtins.Exception) server gone"
    assert "private" not in one_line(lost)
    assert one_line(ConnectionResetError()) == "ConnectionResetError"
