"""The allow-list of image formats: the only Pillow formats ever offered to ``Image.open``, their
MIME types, and how the kinds :func:`~captionbot.images.sniff_kind` recognises map onto them."""

from __future__ import annotations

import logging
import threading

from PIL import Image, features

__all__ = ["FORMAT_MIME", "KIND_TO_FORMAT", "UNSUPPORTED_KIND_NAMES", "supported_formats"]

log = logging.getLogger(__name__)

#: Pillow format name -> MIME type. Only these formats are ever offered to Image.open.
FORMAT_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "HEIF": "image/heif",
    "AVIF": "image/avif",
}
#: sniff_kind() name -> Pillow format name, for the kinds we accept.
KIND_TO_FORMAT = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
    "bmp": "BMP",
    "tiff": "TIFF",
    "heif": "HEIF",
    "avif": "AVIF",
}
#: Kinds we recognise but refuse (or cannot decode here): how to name them to a user.
UNSUPPORTED_KIND_NAMES = {
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
