"""`captionbot web` refuses bad settings with one line and an exit status, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny_model import Backend, child_env

pytestmark = pytest.mark.slow


def _web(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    backend = Backend(f"sqlite+aiosqlite:///{tmp_path}/captionbot.db", "memory://")
    return subprocess.run(
        [sys.executable, "-m", "captionbot_cli", "web", *args],
        env=child_env(tmp_path, backend, **env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_a_busy_port_is_one_line_and_status_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _web(tmp_path, "--port", str(port))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if "can't listen" in ln]
    assert f"127.0.0.1:{port}" in line and "CAPTIONBOT_WEB_PORT" in line


def test_port_0_is_refused_with_a_hint(tmp_path: Path) -> None:
    done = _web(tmp_path, "--port", "0")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: the web page needs a port: --port 8080 (CAPTIONBOT_WEB_PORT is 0)"
