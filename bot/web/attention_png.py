"""Where the model looked for one word, drawn over the photo as a PNG.

Pillow only (the front end has no numpy): the photo is decoded with the upload's own checks
(:func:`captionbot.images.load_image`), turned upright and scaled so its longer side is
``MAX_SIDE``; the word's ``side`` x ``side`` grid is upsampled to the same size, coloured dark blue
(looked little) through red to yellow (looked most) and blended over it.
CPU-bound: call :func:`render` from a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Sequence

from PIL import Image, ImageOps

from captionbot.images import ImageError, load_image

MAX_SIDE = 224
BLEND = 0.5  # how much of the colour map covers the photo
COLD, WARM, HOT = "#08306b", "#d7301f", "#ffd84d"
#: Scaled photos kept, by the caller's key: a page asks for one picture per word of the same photo,
#: and decoding a large photo each time would cost far more than drawing.
CACHED_PHOTOS = 32
_cache: OrderedDict[str, Image.Image] = OrderedDict()
_cache_lock = threading.Lock()


class AttentionImageError(ValueError):
    """The picture can't be drawn (bad grid, unreadable or oversized photo)."""


def render(photo: bytes, grid: Sequence[float], side: int, *, max_pixels: int, key: str | None = None) -> bytes:
    """PNG bytes of ``grid`` (row-major, 0..1) over ``photo``; raises :class:`AttentionImageError`.
    ``key`` names the photo (the same key, the same bytes): its scaled copy is then kept for the next word."""
    if side <= 0 or len(grid) != side * side:
        raise AttentionImageError("the grid does not match its side")
    base = _cached_photo(photo, max_pixels, key)
    heat = Image.new("L", (side, side))
    heat.putdata([round(255 * min(1.0, max(0.0, float(v)))) for v in grid])
    heat = heat.resize(base.size, Image.Resampling.BICUBIC)
    coloured = ImageOps.colorize(heat, black=COLD, white=HOT, mid=WARM)
    out = io.BytesIO()
    Image.blend(base, coloured, BLEND).save(out, format="PNG")
    return out.getvalue()


def _cached_photo(data: bytes, max_pixels: int, key: str | None) -> Image.Image:
    if key is None:
        return _photo(data, max_pixels)
    with _cache_lock:
        if (found := _cache.get(key)) is not None:
            _cache.move_to_end(key)
            return found
    base = _photo(data, max_pixels)
    with _cache_lock:
        _cache[key] = base
        while len(_cache) > CACHED_PHOTOS:
            _cache.popitem(last=False)
    return base


def forget_photos() -> None:
    """Drop every kept photo (someone deleted their photos: no copy of them stays in memory)."""
    with _cache_lock:
        _cache.clear()


def _photo(data: bytes, max_pixels: int) -> Image.Image:
    """The photo, upright, RGB, its longer side ``MAX_SIDE``; refuses more than ``max_pixels``. The
    byte size was checked when the photo was taken: only the pixels are checked again here."""
    try:
        return load_image(data, max_bytes=len(data), max_pixels=max_pixels, fit_to=MAX_SIDE)
    except ImageError as exc:
        raise AttentionImageError(type(exc).__name__) from exc
