"""The layout rules that no linter checks: small source files, and the top-level folders people expect."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("captionbot", "captionbot_cli", "bot", "captioner", "training")
MAX_LINES = 400  # one job per file; past this a module is doing two


def test_every_source_file_is_small() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }
    assert len(sizes) > 100  # the walk found the packages
    too_big = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_big, f"split these by responsibility: {too_big}"


def test_the_top_level_folders_stay() -> None:
    for folder in ("bot", "captioner", "training", "migrations", "tests", "docker"):
        assert (ROOT / folder).is_dir(), folder
