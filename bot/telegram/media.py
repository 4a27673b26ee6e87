"""Finding the image in a message and downloading it, within the size limit.

The size is checked against the limit *before* anything is downloaded (Telegram tells us
``file_size``), then again on what actually arrived. Decoding and validating the bytes is the
service's job (:func:`captionbot.images.inspect_image`); here we only fetch them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from telegram import Bot, Document, Message
from telegram.error import BadRequest, TelegramError

from captionbot import texts

log = logging.getLogger(__name__)

#: File name endings we accept when Telegram reports no image mime type (it often sends HEIC as
#: application/octet-stream).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".heic", ".heif", ".avif", ".bmp", ".tif", ".tiff"}
)


class MediaProblem(Exception):
    """The photo can't be captioned; ``user_message`` says why, ready to send."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


@dataclass(frozen=True)
class ImageRef:
    file_id: str
    file_size: int | None
    kind: Literal["photo", "document"]


def has_media(message: Message) -> bool:
    return bool(message.photo or message.document)


def is_image_document(document: Document) -> bool:
    mime = (document.mime_type or "").lower()
    if mime.startswith("image/"):
        return True
    return PurePosixPath((document.file_name or "").lower()).suffix in IMAGE_SUFFIXES


def image_ref(message: Message) -> ImageRef | None:
    """The largest photo size, or an image document; None when the message has neither.

    Raises :class:`MediaProblem` for a document that is not an image.
    """
    if message.photo:
        # Telegram lists sizes smallest first; pick by pixels in case that ever changes.
        best = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return ImageRef(best.file_id, best.file_size, "photo")
    if message.document:
        if not is_image_document(message.document):
            raise MediaProblem(texts.not_an_image(message.document.file_name))
        return ImageRef(message.document.file_id, message.document.file_size, "document")
    return None


async def download(bot: Bot, ref: ImageRef, *, limit: int) -> bytes:
    """The file's bytes; :class:`MediaProblem` when it is too big or can't be fetched."""
    if ref.file_size is not None and ref.file_size > limit:
        raise MediaProblem(texts.too_big(ref.file_size, limit))
    try:
        file = await bot.get_file(ref.file_id)
    except BadRequest as exc:
        if "too big" in exc.message.lower():  # the public Bot API refuses files over 20 MB
            raise MediaProblem(texts.too_big(limit + 1, limit)) from None
        log.info("getFile failed: %s", exc.message)
        raise MediaProblem(texts.DOWNLOAD_FAILED) from None
    except TelegramError as exc:
        log.info("getFile failed: %s", type(exc).__name__)
        raise MediaProblem(texts.DOWNLOAD_FAILED) from None
    if file.file_size is not None and file.file_size > limit:
        raise MediaProblem(texts.too_big(file.file_size, limit))
    try:
        data = await file.download_as_bytearray()
    except TelegramError as exc:
        log.info("file download failed: %s", type(exc).__name__)
        raise MediaProblem(texts.DOWNLOAD_FAILED) from None
    if len(data) > limit:
        raise MediaProblem(texts.too_big(len(data), limit))
    return bytes(data)
