"""A bot-only install has no torch: every front-end and shared module must import without it.

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

    BLOCKED = ("torch", "torchvision", "captioner", "training")

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
