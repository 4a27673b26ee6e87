"""A real `captionbot web` process (tiny model, SQLite, in-process queue) and Debian's chromium,
driven by Playwright, for the web page's browser tests and the screenshot script's checks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue
from typing import Any

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def chromium_path() -> str | None:
    """The system's chromium (CAPTIONBOT_TEST_CHROMIUM overrides), or None."""
    wanted = os.environ.get("CAPTIONBOT_TEST_CHROMIUM")
    if wanted:
        return wanted if Path(wanted).exists() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    url: str  # http://127.0.0.1:PORT
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: list[str]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another `captionbot` command against the same database."""
        return subprocess.run(
            [sys.executable, "-m", "captionbot_cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@contextmanager
def running_site(data_dir: Path, env: dict[str, str], *, within_s: float = 120.0) -> Iterator[Site]:
    """Start `captionbot web` and yield once it logged that the page is up; stop it after."""
    port = free_port()
    env = {**env, "CAPTIONBOT_WEB_PORT": str(port), "CAPTIONBOT_WEB_HOST": "127.0.0.1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "captionbot_cli", "web"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    lines: Queue[str | None] = Queue()
    log: list[str] = []

    def pump() -> None:  # keeps the pipe drained for the whole life of the process
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            log.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        while True:
            try:
                line = lines.get(timeout=within_s)
            except Empty:
                raise RuntimeError("captionbot web did not start in time:\n" + "\n".join(log[-20:])) from None
            if line is None:
                raise RuntimeError("captionbot web exited:\n" + "\n".join(log[-20:]))
            if "web page at" in line:
                break
        yield Site(f"http://127.0.0.1:{port}", data_dir, env, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def launch_chromium(playwright: Any, executable: str) -> Any:
    # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
    return playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
