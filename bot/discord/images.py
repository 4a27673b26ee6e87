"""Finding the images in a Discord message, and the checks that need no download.

An image is an attachment, or an image an embed shows (a link preview's image or thumbnail).
Attachments come with a content type and a size, so non-images and oversized files are refused
before a byte is downloaded. Embedded images are fetched only through Discord's own media hosts
(the embed's ``proxy_url``): an embed's plain ``url`` can point anywhere, including at addresses
inside the bot's network, and the bot must not fetch arbitrary URLs for strangers.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import discord

from captionbot import texts

#: Where Discord serves attachments and proxied embed media from.
DISCORD_MEDIA_HOSTS = frozenset(
    {"cdn.discordapp.com", "media.discordapp.net", "images-ext-1.discordapp.net", "images-ext-2.discordapp.net"}
)
#: One reply holds one row of buttons per image, and a message has at most 5 rows.
MAX_IMAGES_PER_MESSAGE = 5
#: File types images.py can decode; other image/* types (SVG...) are refused there, with a clear text.
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".heic", ".heif")


@dataclass(frozen=True)
class ImageSource:
    """One image to caption: where it is, and what Discord told us about it (never the bytes)."""

    label: str  # the file name, for messages
    size: int | None  # None for embedded images: Discord doesn't say
    content_type: str | None
    read: Callable[[], Awaitable[bytes]]


@dataclass
class Found:
    """What a message holds: images to caption, and a sentence for each thing we can't use."""

    images: list[ImageSource]
    refused: list[str]
    skipped: int = 0  # images beyond MAX_IMAGES_PER_MESSAGE


def looks_like_image(content_type: str | None, filename: str) -> bool:
    if content_type:
        return content_type.split(";")[0].strip().lower().startswith("image/")
    guessed = mimetypes.guess_type(filename)[0] or ""
    return guessed.startswith("image/") or filename.lower().endswith(_IMAGE_EXTENSIONS)


def precheck(attachment: discord.Attachment, max_bytes: int) -> str | None:
    """Why ``attachment`` can't be captioned, from its metadata alone; None when it may be fine."""
    if not looks_like_image(attachment.content_type, attachment.filename):
        return texts.not_an_image(attachment.filename)
    if attachment.size > max_bytes:
        return texts.too_big(attachment.size, max_bytes)
    return None


def from_attachment(attachment: discord.Attachment) -> ImageSource:
    return ImageSource(attachment.filename, attachment.size, attachment.content_type, attachment.read)


def _embed_image_url(embed: discord.Embed) -> str | None:
    """The embed's picture: its image, else its thumbnail (a link preview often has both, of the same picture)."""
    media = embed.image if (embed.image.proxy_url or embed.image.url) else embed.thumbnail
    return media.proxy_url or media.url


def media_host_allowed(url: str, hosts: Collection[str]) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and (parts.hostname or "") in hosts


def find_images(
    message: discord.Message,
    *,
    max_bytes: int,
    fetch: Callable[[str], Awaitable[bytes]],
    media_hosts: Collection[str] = DISCORD_MEDIA_HOSTS,
    extra: Sequence[discord.Message] = (),
) -> Found:
    """The images of ``message`` (and of ``extra`` messages after it): attachments first, then
    embedded images; at most :data:`MAX_IMAGES_PER_MESSAGE`."""
    images: list[ImageSource] = []
    refused: list[str] = []
    for msg in (message, *extra):
        for attachment in msg.attachments:
            problem = precheck(attachment, max_bytes)
            if problem is None:
                images.append(from_attachment(attachment))
            else:
                refused.append(problem)
        for embed in msg.embeds:
            url = _embed_image_url(embed)
            if not url or not media_host_allowed(url, media_hosts):
                continue  # not served by Discord: never fetched (see the module docstring)
            name = urlsplit(url).path.rsplit("/", 1)[-1] or "embedded image"
            images.append(ImageSource(name, None, None, _bound_fetch(fetch, url)))
    skipped = max(0, len(images) - MAX_IMAGES_PER_MESSAGE)
    return Found(images[:MAX_IMAGES_PER_MESSAGE], refused, skipped)


def _bound_fetch(fetch: Callable[[str], Awaitable[bytes]], url: str) -> Callable[[], Awaitable[bytes]]:
    async def read() -> bytes:
        return await fetch(url)

    return read
