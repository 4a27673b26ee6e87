"""Turning a decoded image into what the model and the database expect: upright (EXIF orientation
applied) and 8-bit RGB, with transparency composited over white."""

from __future__ import annotations

import logging
import math

from PIL import Image, ImageFile, ImageOps

__all__ = ["exif_transpose", "to_rgb"]

log = logging.getLogger(__name__)

_WHITE = (255, 255, 255)


def exif_transpose(im: Image.Image) -> Image.Image:
    """Rotate/flip as the EXIF orientation says; phone photos are stored sideways with orientation 6."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception as exc:  # malformed EXIF is common and harmless: keep the pixels as stored
        log.debug("ignoring unreadable EXIF orientation: %s: %s", type(exc).__name__, exc)
        return im


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB. Alpha and palette/tRNS transparency are composited over white.

    A transparent PNG composited over black would read as "a black background" to the model.
    """
    if im.mode.startswith("I;16"):
        # 16-bit grey (PNG/TIFF). Pillow's convert("L") clips at 255 instead of scaling: scale ourselves.
        im = im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    elif im.mode in ("I", "F"):
        im = _deep_grey_to_l(im)
    if im.mode == "RGB" and "transparency" not in im.info:
        return im.copy() if isinstance(im, ImageFile.ImageFile) else im
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if not has_alpha:
        return im.convert("RGB")
    rgba = im.convert("RGBA")  # also applies palette / tRNS transparency
    out = Image.new("RGB", rgba.size, _WHITE)
    out.paste(rgba, mask=rgba.getchannel("A"))  # alpha blend: transparent -> white, not black
    return out


def _deep_grey_to_l(im: Image.Image) -> Image.Image:
    """32-bit int or float grey -> L. The range is not in the file, so guess it from the values."""
    lo, hi = _value_range(im)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return im.convert("L")
    if im.mode == "F" and 0 <= lo and hi <= 1:  # normalised float
        scale, offset = 255.0, 0.0
    elif 0 <= lo and hi <= 255:  # already 8-bit values
        scale, offset = 1.0, 0.0
    elif 0 <= lo and hi <= 65535:  # 16-bit values stored in a 32-bit image
        scale, offset = 1 / 256, 0.0
    else:  # anything else: stretch min..max to 0..255
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        offset = -lo * scale
    if im.mode == "I":
        im = im.convert("F")
    return im.point(lambda v: v * scale + offset).convert("L")


def _value_range(im: Image.Image) -> tuple[float, float]:
    """(min, max) of a single-band image (Pillow gives one (min, max) pair per band for the others)."""
    lo, hi = im.getextrema()
    if isinstance(lo, tuple) or isinstance(hi, tuple):
        raise ValueError(f"expected a single-band image, got mode {im.mode}")
    return float(lo), float(hi)
