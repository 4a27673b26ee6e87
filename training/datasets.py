"""Caption datasets: Flickr8k files, Karpathy/COCO-style JSON and plain JSONL, all read into one shape."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


class DatasetError(ValueError):
    """The dataset files are missing or malformed; the message says which and how to fix it."""


@dataclass
class CaptionedImage:
    path: Path
    captions: list[str]
    split: str = "train"  # train | dev | test

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class CaptionDataset:
    images: list[CaptionedImage] = field(default_factory=list)

    def split(self, name: str) -> list[CaptionedImage]:
        return [im for im in self.images if im.split == name]

    def __len__(self) -> int:
        return len(self.images)


_SPLIT_FILES = {
    "train": "Flickr_8k.trainImages.txt",
    "dev": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}


def load_flickr8k(root: str | Path) -> CaptionDataset:
    """`Flickr8k.token.txt` (IMAGE#N<TAB>caption) + the three split files + `Images/`.

    Images in no split are left out, as in the official split.
    """
    root = Path(root)
    token_file = root / "Flickr8k.token.txt"
    if not token_file.is_file():
        raise DatasetError(
            f"no Flickr8k captions at {token_file}: point --data at a folder with Flickr8k.token.txt, "
            "the Flickr_8k.*Images.txt split files and Images/"
        )
    captions: dict[str, list[str]] = defaultdict(list)
    for lineno, line in enumerate(token_file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            key, text = line.split("\t", 1)
        except ValueError:
            raise DatasetError(f"{token_file}:{lineno}: expected 'IMAGE#N<TAB>caption'") from None
        captions[key.rsplit("#", 1)[0]].append(text.strip())
    images = []
    for split, fname in _SPLIT_FILES.items():
        split_file = root / fname
        if not split_file.is_file():
            raise DatasetError(f"missing split file {split_file}")
        for name in split_file.read_text(encoding="utf-8").split():
            if name not in captions:
                raise DatasetError(f"{split_file} lists {name}, which has no captions in {token_file}")
            images.append(CaptionedImage(root / "Images" / name, captions[name], split))
    return CaptionDataset(images)


def load_karpathy_json(path: str | Path, image_root: str | Path | None = None) -> CaptionDataset:
    """Karpathy's dataset_*.json: {"images": [{"filename", "filepath"?, "split", "sentences": [{"raw"}]}]}.

    Karpathy's "val" and "restval" map to dev and train.
    """
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["images"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path} is not a Karpathy-format caption file: {exc}") from None
    split_map = {"train": "train", "restval": "train", "val": "dev", "dev": "dev", "test": "test"}
    images = []
    for entry in entries:
        sub = entry.get("filepath", "")
        captions = [s.get("raw") or " ".join(s["tokens"]) for s in entry.get("sentences", [])]
        images.append(
            CaptionedImage(root / sub / entry["filename"], captions, split_map.get(entry.get("split"), "train"))
        )
    return CaptionDataset(images)


def load_jsonl(path: str | Path) -> CaptionDataset:
    """One JSON object per line: {"image": path, "captions": [...], "split": "train"?}.

    Relative image paths are resolved against the JSONL file's folder.
    """
    path = Path(path)
    images = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            image, caps = row["image"], row["captions"]
        except (ValueError, KeyError, TypeError):
            raise DatasetError(f'{path}:{lineno}: expected {{"image": ..., "captions": [...]}}') from None
        if isinstance(caps, str):
            caps = [caps]
        image_path = Path(image)
        if not image_path.is_absolute():
            image_path = path.parent / image_path
        images.append(CaptionedImage(image_path, list(caps), row.get("split", "train")))
    return CaptionDataset(images)


def load_dataset(path: str | Path) -> CaptionDataset:
    """Pick the reader by what `path` is: a Flickr8k folder, a .json or a .jsonl file."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(
            f"no dataset at {path}: give a Flickr8k folder (Images/ and Flickr8k.token.txt; Flickr8k is for"
            " research use: request it from its authors, or use a copy you may use), a Karpathy .json or a .jsonl file"
        )
    if path.is_dir():
        return load_flickr8k(path)
    if path.suffix == ".jsonl":
        return load_jsonl(path)
    if path.suffix == ".json":
        return load_karpathy_json(path)
    raise DatasetError(f"don't know how to read {path}: give a Flickr8k folder, a .json or a .jsonl file")
