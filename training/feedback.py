"""Turn people's feedback (corrections and good ratings) into a fine-tuning dataset.

``export_feedback`` writes the JSONL that ``captionbot train --data feedback.jsonl --init-from
current.pt`` reads (see :func:`training.datasets.load_jsonl`), one line per photo::

    {"image": "/abs/path/in/the/image/store/<sha256>", "captions": ["...", ...], "split": "train"}

Privacy: lines point at the photo already kept in the content-addressed :class:`ImageStore` (no
copies of anyone's photos), and hold no user ids, chat ids or display names. People who opted out
of training (as requester or as rater) are left out by :func:`captionbot.storage.captions.training_examples`.

Split: a photo is in ``dev`` when the first 32 bits of its sha256, read as a fraction of 2**32, are
below ``dev_fraction``. That depends on the photo alone, so a photo never moves between splits from
one export to the next (raising ``dev_fraction`` only moves photos from train to dev), and no dev
photo is ever trained on in a later round.

Not supported yet: mixing the feedback with the original training data (e.g. a sample of Flickr8k)
in the same file. Fine-tuning on feedback alone for many epochs may drift from the original
distribution; keep fine-tuning rounds short (few epochs, low learning rate) until that exists.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot.storage import captions
from captionbot.storage.imagestore import ImageStore

_SPLIT_BITS = 32


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What :func:`export_feedback` wrote and what it left out."""

    path: Path
    images: int = 0
    captions: int = 0
    train_images: int = 0
    dev_images: int = 0
    corrections: int = 0
    rated_captions: int = 0
    #: Photos with usable feedback whose file is no longer in the image store.
    skipped_missing_files: int = 0
    #: Photos with usable feedback that the retention sweep purged (``Image.purged_at`` set).
    skipped_purged: int = 0

    @property
    def skipped(self) -> int:
        """Photos left out because their file is gone."""
        return self.skipped_missing_files + self.skipped_purged

    def summary(self) -> str:
        """One human-readable paragraph (what ``captionbot feedback export`` prints)."""
        text = (
            f"wrote {self.path}: {self.images} images ({self.train_images} train, {self.dev_images} dev), "
            f"{self.captions} captions ({self.corrections} corrections, {self.rated_captions} rated captions); "
            f"skipped {self.skipped} images whose file is gone "
            f"({self.skipped_purged} purged, {self.skipped_missing_files} missing from the store)"
        )
        if self.images and not self.dev_images:
            text += "\nwarning: no dev images; `captionbot train` needs some (raise --dev-fraction or wait for more)"
        return text


def dev_split(image_sha256: str, dev_fraction: float) -> str:
    """``"dev"`` or ``"train"`` for a photo, from its digest alone (stable across exports)."""
    bucket = int(image_sha256[: _SPLIT_BITS // 4], 16)
    return "dev" if bucket < dev_fraction * (1 << _SPLIT_BITS) else "train"


def _normalise(text: str) -> str:
    """Collapse whitespace, so "a dog " and "a  dog" count as one caption."""
    return re.sub(r"\s+", " ", text).strip()


def group_captions(examples: Iterable[captions.TrainingExample]) -> dict[str, list[captions.TrainingExample]]:
    """Examples per photo sha256, in feedback order, without repeated captions (case-insensitive)."""
    grouped: dict[str, list[captions.TrainingExample]] = {}
    seen: set[tuple[str, str]] = set()
    for ex in examples:
        text = _normalise(ex.text)
        key = (ex.image_sha256, text.lower())
        if not text or key in seen:
            continue
        seen.add(key)
        grouped.setdefault(ex.image_sha256, []).append(ex)
    return grouped


def _write_jsonl_atomic(out: Path, rows: list[dict[str, object]]) -> None:
    """Write all lines to a temp file and rename it, so a reader never sees half a dataset."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def export_feedback(
    session_factory: async_sessionmaker[AsyncSession],
    image_store: ImageStore,
    out: Path,
    *,
    min_rating: int,
    dev_fraction: float = 0.1,
) -> ExportReport:
    """Write the feedback dataset to ``out`` (JSONL, one photo a line) and report what it holds.

    Captions of a photo are its corrections and its captions rated at least ``min_rating``, without
    repeats. Photos whose file is gone (purged or missing) are skipped and counted.
    """
    if not 0.0 <= dev_fraction < 1.0:
        raise ValueError("dev_fraction must be in [0, 1)")
    async with session_factory() as session:
        examples = await captions.training_examples(session, min_rating=min_rating)
        purged = await captions.count_purged_training_photos(session, min_rating=min_rating)

    rows: list[dict[str, object]] = []
    missing = corrections = rated = dev = 0
    # Sorted by digest: the same feedback always gives the same file (easy to diff between rounds).
    for sha, group in sorted(group_captions(examples).items()):
        if not image_store.exists(sha):
            missing += 1
            continue
        split = dev_split(sha, dev_fraction)
        dev += split == "dev"
        corrections += sum(ex.source == "correction" for ex in group)
        rated += sum(ex.source == "rating" for ex in group)
        # Only the path, the texts and the split: no user, chat or feedback ids leave the database.
        path = image_store.path(sha).resolve()
        rows.append({"image": str(path), "captions": [_normalise(ex.text) for ex in group], "split": split})
    _write_jsonl_atomic(out, rows)
    return ExportReport(
        path=out,
        images=len(rows),
        captions=corrections + rated,
        train_images=len(rows) - dev,
        dev_images=dev,
        corrections=corrections,
        rated_captions=rated,
        skipped_missing_files=missing,
        skipped_purged=purged,
    )


__all__ = ["ExportReport", "dev_split", "export_feedback", "group_captions"]
