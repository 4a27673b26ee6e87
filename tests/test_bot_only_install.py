"""A bot-only install has no torch and no OCR engine: every front-end and shared module must import without them.

The check runs in a fresh interpreter whose import system refuses torch, torchvision, captioner and
training (as if they were not installed), so an import that sneaks in through any chain fails here.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SCRIPT = textwrap.dedent(
    """
    import importlib, importlib.abc, pkgutil, sys

    # torch and the OCR engine are the worker's: a bot-only install has neither.
    BLOCKED = (
        "torch", "torchvision", "captioner", "training", "rapidocr_onnxruntime", "onnxruntime", "cv2", "symspellpy"
    )

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (bot-only install)", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
    imported = []
    for package in ("bot", "captionbot"):
        root = importlib.import_module(package)
        imported.append(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            importlib.import_module(info.name)
            imported.append(info.name)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print(len(imported), "modules")
    """
)


def test_front_ends_and_shared_package_import_without_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    count = int(result.stdout.split()[0])
    assert count >= 40  # every module of bot/ and captionbot/, not an empty walk


_RUNNING_BOT = textwrap.dedent(
    """
    import asyncio, sys
    from captionbot.settings import Settings
    from captionbot.storage.db import upgrade_async
    from captionbot_cli.runtime import Stack

    async def main(db, broker, folder):
        await upgrade_async(db)
        settings = Settings(
            database_url=db, broker_url=broker, data_dir=folder, metrics_port=0, web_port=0,
            telegram_bot_token=None, discord_bot_token=None, read_text=True,
        )
        stack = await Stack.open(settings, "bot", adapters=False)
        await stack.close(grace=5)

    asyncio.run(main(*sys.argv[1:4]))
    worker_only = ("torch", "captioner", "rapidocr_onnxruntime", "onnxruntime", "cv2", "symspellpy")
    leaked = sorted({m.split(".")[0] for m in sys.modules} & set(worker_only))
    print("leaked:", leaked)
    sys.exit(bool(leaked))
    """
)


def test_a_running_bot_process_loads_neither_torch_nor_the_ocr_engine(tmp_path: Path) -> None:
    """`captionbot bot` (the split deployment's front-end process), started and stopped for real,
    with reading text on: the worker reads text, the bot process never loads the engine."""
    from tests.tiny_model import purge_redis, redis_available, redis_broker_url

    if not redis_available():
        import pytest

        pytest.skip("Redis is not reachable: the split deployment needs a shared broker")
    broker, prefix = redis_broker_url()
    db = f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"
    try:
        result = subprocess.run(
            [sys.executable, "-c", _RUNNING_BOT, db, broker, str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        import asyncio

        asyncio.run(purge_redis(prefix))
    assert result.returncode == 0, result.stdout[-500:] + result.stderr[-3000:]
    assert "leaked: []" in result.stdout
