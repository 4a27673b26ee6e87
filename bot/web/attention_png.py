"""Where the model looked for one word, drawn over the photo as a PNG.

Pillow only (the front end has no numpy): the photo is decoded, turned upright (EXIF), scaled so
its longer side is ``MAX_SIDE``; the word's ``side`` x ``side`` grid is upsampled to the same size,
coloured dark blue (looked little) through red to yellow (looked most) and blended over it.
CPU-bound: call :func:`render` from a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageOps, UnidentifiedImageError

from captionbot.images.formats import supported_formats

MAX_SIDE = 224
BLEND = 0.5  # how much of the colour map covers the photo
COLD, WARM, HOT = "#08306b", "#d7301f", "#ffd84d"


class AttentionImageError(ValueError):
    """The picture can't be drawn (bad grid, unreadable or oversized photo)."""


def render(photo: bytes, grid: Sequence[float], side: int, *, max_pixels: int) -> bytes:
    """PNG bytes of ``grid`` (row-major, 0..1) over ``photo``; raises :class:`AttentionImageError`."""
    if side <= 0 or len(grid) != side * side:
        raise AttentionImageError("the grid does not match its side")
    base = _photo(photo, max_pixels)
    heat = Image.new("L", (side, side))
    heat.putdata([round(255 * min(1.0, max(0.0, float(v)))) for v in grid])
    heat = heat.resize(base.size, Image.Resampling.BICUBIC)
    coloured = ImageOps.colorize(heat, black=COLD, white=HOT, mid=WARM)
    out = io.BytesIO()
    Image.blend(base, coloured, BLEND).save(out, format="PNG")
    return out.getvalue()


def _photo(data: bytes, max_pixels: int) -> Image.Image:
    """The photo, upright, RGB, its longer side ``MAX_SIDE``; refuses more than ``max_pixels``."""
    try:
        with Image.open(io.BytesIO(data), formats=supported_formats()) as image:
            if image.width * image.height > max_pixels:  # check before decoding anything
                raise AttentionImageError("too many pixels")
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale
            upright = ImageOps.exif_transpose(image)
            return ImageOps.contain(upright.convert("RGB"), (MAX_SIDE, MAX_SIDE))
    except AttentionImageError:
        raise
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError, SyntaxError) as exc:
        raise AttentionImageError(type(exc).__name__) from exc
