"""The errors of :mod:`captionbot.images`: one :class:`ImageError` (a ``ValueError``) per reason we
refuse an upload, each with a machine ``code`` and a ``user_message`` a bot can send back as is."""

from __future__ import annotations

__all__ = [
    "ACCEPTED_NAMES",
    "CorruptImageError",
    "ImageError",
    "ImageTooLargeError",
    "NotAnImageError",
    "TooManyPixelsError",
    "UnsupportedImageError",
]

#: How the user messages name the formats we take.
ACCEPTED_NAMES = "JPEG, PNG, WebP, GIF or HEIC"


class ImageError(ValueError):
    """An upload we will not caption. ``str(exc)`` is for logs, ``user_message`` is for the chat user."""

    code = "image_error"
    default_user_message = f"I couldn't read that image. Please send a {ACCEPTED_NAMES} photo."

    def __init__(self, detail: str, *, user_message: str | None = None) -> None:
        super().__init__(detail)
        self.user_message = user_message or self.default_user_message


class NotAnImageError(ImageError):
    code = "not_an_image"
    default_user_message = f"That file isn't an image I can read. Please send a {ACCEPTED_NAMES} photo."


class CorruptImageError(ImageError):
    code = "corrupt"
    default_user_message = "That image seems to be damaged or incomplete. Please try sending it again."


class UnsupportedImageError(ImageError):
    code = "unsupported"
    default_user_message = f"I can't read that kind of image. Please send a {ACCEPTED_NAMES} photo."

    def __init__(self, detail: str, *, kind: str | None = None, user_message: str | None = None) -> None:
        self.kind = kind
        if user_message is None and kind:
            user_message = f"I can't read {kind} files. Please send a {ACCEPTED_NAMES} photo."
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
