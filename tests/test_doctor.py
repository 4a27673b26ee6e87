"""`captionbot doctor`, run as a person runs it: a subprocess with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.web.browser import free_port

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTIONBOT_") and "TOKEN" not in k}
    env.update(CAPTIONBOT_DATA_DIR=str(tmp_path / "data"), CAPTIONBOT_WEB_PORT=str(free_port()))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def _captionbot(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "captionbot_cli", *args],
        env=_env(tmp_path, **extra),
        cwd=tmp_path,  # no .env file from the checkout
        capture_output=True,
        text=True,
        timeout=120,
    )


def _rows(stdout: str) -> dict[str, tuple[str, str]]:
    """{name: (status, detail)} from the printed table."""
    rows = {}
    for line in stdout.splitlines():
        for status in ("OK", "WARN", "FAIL"):
            name, sep, detail = line.partition(f"  {status}  ")
            if sep:
                rows[name.strip()] = (status, detail.strip())
                break
    return rows


def test_a_fresh_embedded_deployment_is_fine(tmp_path: Path) -> None:
    upgrade = _captionbot(tmp_path, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    done = _captionbot(tmp_path, "doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _rows(done.stdout)
    for name in ("settings", "database", "broker", "model", "device", "front ends", "web page"):
        assert rows[name][0] == "OK", (name, done.stdout)
    assert "in-process queue" in rows["broker"][1]
    assert "sha256" in rows["model"][1]


def test_an_unreachable_database_fails_without_a_traceback(tmp_path: Path) -> None:
    done = _captionbot(
        tmp_path, "doctor", CAPTIONBOT_DATABASE_URL="postgresql://nobody:hunter2@127.0.0.1:9/x", CAPTIONBOT_DEVICE="cpu"
    )
    assert done.returncode == 1, done.stdout + done.stderr
    status, detail = _rows(done.stdout)["database"]
    assert status == "FAIL"
    assert "can't reach" in detail
    assert "hunter2" not in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_cuda_asked_for_without_cuda_fails_the_device_row(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = _captionbot(tmp_path, "doctor", CAPTIONBOT_DEVICE="cuda")
    assert done.returncode == 1, done.stdout + done.stderr
    status, detail = _rows(done.stdout)["device"]
    assert status == "FAIL"
    assert "CUDA is not available" in detail


def test_a_bad_setting_is_one_fail_row_naming_its_variable(tmp_path: Path) -> None:
    done = _captionbot(tmp_path, "doctor", CAPTIONBOT_BATCH_SIZE="zero")
    assert done.returncode == 1, done.stdout + done.stderr
    status, detail = _rows(done.stdout)["settings"]
    assert status == "FAIL"
    assert "CAPTIONBOT_BATCH_SIZE" in detail
    assert "database" not in _rows(done.stdout)


class _Refuses(BaseHTTPRequestHandler):
    """A Bot API server that refuses every token, as Telegram does."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = b'{"ok": false, "error_code": 401, "description": "Unauthorized"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_token_telegram_refuses_fails_its_row_and_is_never_shown(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = _captionbot(
            tmp_path,
            "doctor",
            TELEGRAM_BOT_TOKEN="123456:secret-token-value",
            CAPTIONBOT_TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{server.server_address[1]}/bot",
            CAPTIONBOT_DEVICE="cpu",
        )
    finally:
        server.shutdown()
    assert done.returncode == 1, done.stdout + done.stderr
    assert _rows(done.stdout)["telegram"] == ("FAIL", "Telegram refused the token")
    assert "secret-token-value" not in done.stdout + done.stderr
