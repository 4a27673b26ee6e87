"""Safe decoding of user-supplied images, with Pillow only.

Everything a chat user sends goes through here before it reaches the model or the database, so the
rules are strict and cheap checks come first:

1. the byte size is checked before Pillow sees anything;
2. ``Image.open`` is lazy: it parses the header only, so the declared width x height is checked
   against the pixel limit *before* any pixel memory is allocated (a 100 kB PNG can declare
   100000 x 100000 pixels);
3. only an allow-list of formats is offered to Pillow, so it never hands a file to Ghostscript
   (EPS/PDF) or to one of its many rarely used legacy parsers;
4. the image is decoded fully (``.load()``) with ``ImageFile.LOAD_TRUNCATED_IMAGES`` left False,
   so a truncated upload raises instead of decoding to a half-grey picture;
5. EXIF orientation is applied and every pixel mode is turned into 8-bit RGB, with transparency
   composited over white (a transparent PNG over black reads as "a black background" to the model).

Every failure is an :class:`ImageError` (a ``ValueError``) with a machine ``code`` and a short
``user_message`` that a bot can send back as is. Image bytes are never logged or put in messages.

This module must not import torch or numpy: the bot processes use it without the model installed.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError, features

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "CorruptImageError",
    "ImageError",
    "ImageInfo",
    "ImageTooLargeError",
    "NotAnImageError",
    "TooManyPixelsError",
    "UnsupportedImageError",
    "inspect_image",
    "load_image",
    "sniff_kind",
    "supported_formats",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 20 * 2**20
DEFAULT_MAX_PIXELS = 40_000_000

_ACCEPTED_NAMES = "JPEG, PNG, WebP, GIF or HEIC"


# --------------------------------------------------------------------------------------------- errors


class ImageError(ValueError):
    """An upload we will not caption. ``str(exc)`` is for logs, ``user_message`` is for the chat user."""

    code = "image_error"
    default_user_message = f"I couldn't read that image. Please send a {_ACCEPTED_NAMES} photo."

    def __init__(self, detail: str, *, user_message: str | None = None) -> None:
        super().__init__(detail)
        self.user_message = user_message or self.default_user_message


class NotAnImageError(ImageError):
    code = "not_an_image"
    default_user_message = f"That file isn't an image I can read. Please send a {_ACCEPTED_NAMES} photo."


class CorruptImageError(ImageError):
    code = "corrupt"
    default_user_message = "That image seems to be damaged or incomplete. Please try sending it again."


class UnsupportedImageError(ImageError):
    code = "unsupported"
    default_user_message = f"I can't read that kind of image. Please send a {_ACCEPTED_NAMES} photo."

    def __init__(self, detail: str, *, kind: str | None = None, user_message: str | None = None) -> None:
        self.kind = kind
        if user_message is None and kind:
            user_message = f"I can't read {kind} files. Please send a {_ACCEPTED_NAMES} photo."
        super().__init__(detail, user_message=user_message)


class ImageTooLargeError(ImageError):
    code = "too_large"

    def __init__(self, size_bytes: int, max_bytes: int) -> None:
        self.size_bytes = size_bytes
        self.max_bytes = max_bytes
        super().__init__(
            f"image is {size_bytes} bytes, over the limit of {max_bytes} bytes",
            user_message=f"That file is too big. Please send an image under {_mb(max_bytes)} MB.",
        )


class TooManyPixelsError(ImageError):
    code = "too_many_pixels"

    def __init__(self, width: int | None, height: int | None, max_pixels: int, detail: str = "") -> None:
        self.width, self.height, self.max_pixels = width, height, max_pixels
        dims = f"{width}x{height} " if width is not None and height is not None else ""
        super().__init__(
            detail or f"image declares {dims}pixels, over the limit of {max_pixels} pixels",
            user_message=(
                "That picture has too many pixels for me. "
                f"Please send one under {max_pixels / 1e6:g} megapixels (a normal phone photo is fine)."
            ),
        )


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f}".rstrip("0").rstrip(".")


# ------------------------------------------------------------------------------------------- formats

# Pillow format name -> MIME type. Only these formats are ever offered to Image.open.
_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "HEIF": "image/heif",
    "AVIF": "image/avif",
}
# sniff_kind() name -> Pillow format name, for the kinds we accept.
_KIND_TO_FORMAT = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
    "bmp": "BMP",
    "tiff": "TIFF",
    "heif": "HEIF",
    "avif": "AVIF",
}
# Kinds we recognise but refuse: how to name them to a user.
_UNSUPPORTED_KIND_NAMES = {
    "pdf": "PDF",
    "eps": "PostScript/EPS",
    "psd": "Photoshop (PSD)",
    "svg": "SVG",
    "ico": "icon (ICO)",
    "jpeg2000": "JPEG 2000",
    "jxl": "JPEG XL",
    "qoi": "QOI",
    "video": "video",
    "heif": "HEIC",
    "avif": "AVIF",
}

_formats_lock = threading.Lock()
_formats: tuple[str, ...] | None = None


def supported_formats() -> tuple[str, ...]:
    """The Pillow format names ``load_image`` accepts here: JPEG, PNG, WEBP, GIF, BMP, TIFF, and HEIF and
    AVIF when a decoder for them is installed.

    The first call registers pillow-heif's opener, once and lazily, so that importing this module
    stays cheap (pillow-heif and Pillow's full plugin set cost tens of ms) until an image comes.
    """
    global _formats
    if _formats is None:
        with _formats_lock:
            if _formats is None:
                _formats = _init_formats()
    return _formats


def _init_formats() -> tuple[str, ...]:
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:  # a deployment without pillow-heif: HEIC uploads get "unsupported"
        log.warning("pillow-heif is not installed: HEIC/HEIF photos will be refused")
    Image.init()
    wanted = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF"]
    # Pillow >= 11.2 decodes AVIF itself when built with libavif (pillow-heif >= 1.0 dropped AVIF).
    # Its plugin is registered even without libavif, hence the feature check; older Pillows don't
    # know the feature name at all (and would warn if asked).
    if "avif" in features.modules and features.check_module("avif"):
        wanted.append("AVIF")
    # Image.open raises KeyError for a name it has no plugin for, so keep only registered ones.
    return tuple(f for f in wanted if f in Image.OPEN)


_DIB_HEADER_SIZES = (12, 40, 52, 56, 64, 108, 124)


def sniff_kind(data: bytes) -> str | None:
    """Guess a file's kind from its first bytes, without Pillow: "jpeg", "png", "gif", "webp", "bmp",
    "tiff", "heif", "avif", or a kind we refuse ("pdf", "eps", "psd", "svg", "ico", "jpeg2000", "jxl",
    "qoi", "video"); None when nothing matches. Cheap, and a hint only: it does not validate the file.
    """
    head = bytes(data[:1024])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    # "BM" alone is too weak (a text file can start with it): also require a known DIB header size.
    if head[:2] == b"BM" and len(head) >= 18 and struct.unpack("<I", head[14:18])[0] in _DIB_HEADER_SIZES:
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[4:8] == b"ftyp":
        return _sniff_isobmff(head)
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        return "eps"
    if head.startswith(b"8BPS"):
        return "psd"
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "jpeg2000"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "jxl"
    if head.startswith(b"qoif"):
        return "qoi"
    if head.startswith(b"\x00\x00\x01\x00") and len(head) >= 6 and head[4:6] != b"\x00\x00":
        return "ico"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<?xml", b"<svg", b"<!doctype svg")) and b"<svg" in text:
        return "svg"
    return None


def _sniff_isobmff(head: bytes) -> str:
    """HEIF, AVIF and MP4/MOV all start with an ISO-BMFF 'ftyp' box: tell them apart by its brands."""
    box_size = struct.unpack(">I", head[:4])[0]
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    if major in (b"avif", b"avis"):
        return "avif"
    if major in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"):
        return "heif"
    if major in (b"mif1", b"msf1"):
        return "avif" if compatible & {b"avif", b"avis"} else "heif"
    return "video"


# ------------------------------------------------------------------------------------------- decoding


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
) -> Image.Image:
    """Decode ``data`` (the file's bytes, or a path) into a fully loaded, upright RGB image.

    ``squash_to=S`` returns it resized to S x S, as the captioner's preprocessing does; a JPEG is then
    decoded at the smallest DCT scale (1/2, 1/4, 1/8) that still gives at least S x S, which makes a
    12-megapixel phone photo several times cheaper to decode, with the same checks.

    Raises an :class:`ImageError` subclass for anything that is not an acceptable image;
    a missing path raises ``FileNotFoundError`` as usual (that is our bug, not the user's).
    """
    raw = _read(data, max_bytes)
    image, _ = _decode(raw, max_pixels, draft_to=squash_to)
    if squash_to is not None and image.size != (squash_to, squash_to):
        image = image.resize((squash_to, squash_to), Image.Resampling.BILINEAR, reducing_gap=3.0)
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
        mime = (im.get_format_mimetype() if fmt == im.format else None) or _MIME[fmt]
        upright = _exif_transpose(im)
        try:
            rgb = _to_rgb(upright)
        except ValueError as exc:  # e.g. a LAB or multi-channel TIFF Pillow cannot convert
            raise UnsupportedImageError(
                f"cannot convert {fmt} mode {upright.mode} to RGB: {exc}",
                user_message=f"I can't read the colours in that image. Please send a {_ACCEPTED_NAMES} file.",
            ) from None
    return rgb, (fmt, mime)


def _unidentified(raw: bytes, formats: tuple[str, ...], detail: str) -> ImageError:
    """Pillow could not open it: tell 'broken photo' from 'wrong kind of file' by the magic bytes.

    Pillow's own prefix tests are too loose for this (any file starting with "BM" is tried as BMP).
    """
    kind = sniff_kind(raw)
    if kind is None:
        return NotAnImageError(f"no known image signature ({detail})")
    if _KIND_TO_FORMAT.get(kind) in formats:
        return CorruptImageError(f"looks like {kind} but {detail}")
    return UnsupportedImageError(
        f"{kind} is not an accepted format", kind=_UNSUPPORTED_KIND_NAMES.get(kind, kind.upper())
    )


def _check_pixels(size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise CorruptImageError(f"image declares an empty size {width}x{height}")
    if width * height > limit:
        raise TooManyPixelsError(width, height, limit)


def _exif_transpose(im: Image.Image) -> Image.Image:
    """Rotate/flip as the EXIF orientation says; phone photos are stored sideways with orientation 6."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception as exc:  # malformed EXIF is common and harmless: keep the pixels as stored
        log.debug("ignoring unreadable EXIF orientation: %s: %s", type(exc).__name__, exc)
        return im


_WHITE = (255, 255, 255)


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB. Alpha and palette/tRNS transparency are composited over white."""
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
    lo, hi = im.getextrema()
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
