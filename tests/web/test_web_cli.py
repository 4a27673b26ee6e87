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


async def test_captionbot_run_serves_the_web_page_beside_the_bots(tmp_path: Path) -> None:
    import aiohttp

    from captionbot.storage.db import upgrade_async
    from captionbot_cli.runtime import Stack
    from tests.tiny_model import make_settings
    from tests.web.browser import free_port

    url = f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"
    await upgrade_async(url)
    port = free_port()
    settings = make_settings(tmp_path, Backend(url, "memory://"), web_port=port)
    stack = await Stack.open(settings, "all")  # as `captionbot run` opens it: every enabled front end
    try:
        assert list(stack.adapters) == ["web"]
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/") as response:
            assert response.status == 200
            assert "Describe a photo" in await response.text()
    finally:
        await stack.close(grace=10)
