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

The modules: :mod:`~captionbot.images.errors` (the errors), :mod:`~captionbot.images.formats` (the
format allow-list), :mod:`~captionbot.images.sniffing` (a file's kind from its magic bytes),
:mod:`~captionbot.images.decoding` (reading, checking and decoding) and
:mod:`~captionbot.images.pixels` (orientation and colour conversion).

This package must not import torch or numpy: the bot processes use it without the model installed.
"""

from __future__ import annotations

from captionbot.images.decoding import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageInfo, inspect_image, load_image
from captionbot.images.errors import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    TooManyPixelsError,
    UnsupportedImageError,
)
from captionbot.images.formats import supported_formats
from captionbot.images.sniffing import sniff_kind

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
