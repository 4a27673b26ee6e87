"""Reading and decoding an upload: :func:`load_image` and :func:`inspect_image`, with every check.

The cheap checks come first: the byte size before Pillow sees anything; the header's declared
width x height before any pixel memory is allocated; only the allow-listed formats offered to
Pillow; then a full decode with ``ImageFile.LOAD_TRUNCATED_IMAGES`` left False, so a truncated upload
raises instead of decoding to a half-grey picture.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from captionbot.images.errors import (
    ACCEPTED_NAMES,
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    TooManyPixelsError,
    UnsupportedImageError,
)
from captionbot.images.formats import FORMAT_MIME, KIND_TO_FORMAT, UNSUPPORTED_KIND_NAMES, supported_formats
from captionbot.images.pixels import exif_transpose, to_rgb
from captionbot.images.sniffing import sniff_kind

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "ImageInfo", "inspect_image", "load_image"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 20 * 2**20
DEFAULT_MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class ImageInfo:
    """What the bot stores about an accepted upload. width/height are after EXIF orientation."""

    sha256: str
    size_bytes: int
    width: int
    height: int
    format: str  # Pillow's name: "JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF"
    mime: str


def load_image(
    data: bytes | str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    squash_to: int | None = None,
    fit_to: int | None = None,
) -> Image.Image:
    """Decode ``data`` (the file's bytes, or a path) into a fully loaded, upright RGB image.

    ``squash_to=S`` returns it resized to S x S, as the captioner's preprocessing does; a JPEG is then
    decoded at the smallest DCT scale (1/2, 1/4, 1/8) that still gives at least S x S, which makes a
    12-megapixel phone photo several times cheaper to decode, with the same checks. ``fit_to=S``
    keeps the aspect ratio instead: the longer side becomes S (the web page's attention pictures).

    Raises an :class:`ImageError` subclass for anything that is not an acceptable image;
    a missing path raises ``FileNotFoundError`` as usual (that is our bug, not the user's).
    """
    if squash_to is not None and fit_to is not None:
        raise ValueError("squash_to and fit_to exclude each other")
    raw = _read(data, max_bytes)
    image, _ = _decode(raw, max_pixels, draft_to=squash_to or fit_to)
    if squash_to is not None and image.size != (squash_to, squash_to):
        image = image.resize((squash_to, squash_to), Image.Resampling.BILINEAR, reducing_gap=3.0)
    if fit_to is not None:
        image = ImageOps.contain(image, (fit_to, fit_to))
    return image


def inspect_image(
    data: bytes | str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageInfo:
    """Validate an upload exactly as :func:`load_image` does (full decode) and describe it.

    ``sha256`` is of the bytes as sent, so the same upload always gets the same content address.
    """
    raw = _read(data, max_bytes)
    image, fmt_mime = _decode(raw, max_pixels)
    fmt, mime = fmt_mime
    return ImageInfo(
        sha256=hashlib.sha256(raw).hexdigest(),
        size_bytes=len(raw),
        width=image.width,
        height=image.height,
        format=fmt,
        mime=mime,
    )


def _read(data: bytes | str | os.PathLike[str], max_bytes: int) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if size > max_bytes:
            raise ImageTooLargeError(size, max_bytes)
        return bytes(data)
    if not isinstance(data, str | os.PathLike):
        raise TypeError(f"expected bytes or a path, got {type(data).__name__}")
    path = Path(data)
    size = path.stat().st_size
    if size > max_bytes:  # refuse before reading anything
        raise ImageTooLargeError(size, max_bytes)
    with path.open("rb") as f:
        raw = f.read(max_bytes + 1)  # bounded: the file may have grown since stat()
    if len(raw) > max_bytes:
        raise ImageTooLargeError(len(raw), max_bytes)
    return raw


def _decode(raw: bytes, max_pixels: int, draft_to: int | None = None) -> tuple[Image.Image, tuple[str, str]]:
    """bytes -> (RGB image, (format, mime)). All the checks live here."""
    if not raw:
        raise NotAnImageError("empty file")
    formats = supported_formats()
    # Pillow warns (DecompressionBombWarning) above Image.MAX_IMAGE_PIXELS and raises above twice that.
    # Capping our limit at Pillow's means every image Pillow would warn about is refused below, without
    # touching the process-wide (and not thread-safe) warning filters.
    limit = max_pixels if Image.MAX_IMAGE_PIXELS is None else min(max_pixels, Image.MAX_IMAGE_PIXELS)

    try:
        im = Image.open(io.BytesIO(raw), formats=formats)
    except Image.DecompressionBombError as exc:
        raise TooManyPixelsError(None, None, limit, f"Pillow refused the header: {exc}") from None
    except UnidentifiedImageError:
        raise _unidentified(raw, formats, "Pillow found no accepted format") from None
    except MemoryError:
        raise
    except Exception as exc:  # a plugin whose cheap prefix test matched choked on the header
        raise _unidentified(raw, formats, f"cannot parse the header: {type(exc).__name__}: {exc}") from None

    with im:
        fmt = "JPEG" if im.format == "MPO" else im.format  # MPO: a JPEG with extra frames (3D/depth)
        if fmt not in formats:  # cannot happen with formats=..., but this is the security boundary
            raise UnsupportedImageError(f"Pillow opened it as {im.format}", kind=im.format)
        _check_pixels(im.size, limit)  # the header's claim, before a single pixel is allocated
        if draft_to is not None and fmt == "JPEG":
            im.draft("RGB", (draft_to, draft_to))  # decode at a reduced DCT scale, still >= draft_to a side
        try:
            im.load()  # full decode; raises on truncated data because LOAD_TRUNCATED_IMAGES is False
        except Image.DecompressionBombError as exc:
            raise TooManyPixelsError(*im.size, limit, f"Pillow refused to decode: {exc}") from None
        except MemoryError:
            raise
        except Exception as exc:
            raise CorruptImageError(f"{fmt} data is truncated or broken: {type(exc).__name__}: {exc}") from None
        _check_pixels(im.size, limit)  # some decoders (HEIF grids) learn the real size only now
        if ImageFile.LOAD_TRUNCATED_IMAGES:
            # Someone flipped the global switch: truncated files now decode silently. Say so loudly.
            log.warning("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated uploads are not detected")
        mime = (im.get_format_mimetype() if fmt == im.format else None) or FORMAT_MIME[fmt]
        upright = exif_transpose(im)
        try:
            rgb = to_rgb(upright)
        except ValueError as exc:  # e.g. a LAB or multi-channel TIFF Pillow cannot convert
            raise UnsupportedImageError(
                f"cannot convert {fmt} mode {upright.mode} to RGB: {exc}",
                user_message=f"I can't read the colours in that image. Please send a {ACCEPTED_NAMES} file.",
            ) from None
    return rgb, (fmt, mime)


def _unidentified(raw: bytes, formats: tuple[str, ...], detail: str) -> ImageError:
    """Pillow could not open it: tell 'broken photo' from 'wrong kind of file' by the magic bytes.

    Pillow's own prefix tests are too loose for this (any file starting with "BM" is tried as BMP).
    """
    kind = sniff_kind(raw)
    if kind is None:
        return NotAnImageError(f"no known image signature ({detail})")
    if KIND_TO_FORMAT.get(kind) in formats:
        return CorruptImageError(f"looks like {kind} but {detail}")
    return UnsupportedImageError(
        f"{kind} is not an accepted format", kind=UNSUPPORTED_KIND_NAMES.get(kind, kind.upper())
    )


def _check_pixels(size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise CorruptImageError(f"image declares an empty size {width}x{height}")
    if width * height > limit:
        raise TooManyPixelsError(width, height, limit)
