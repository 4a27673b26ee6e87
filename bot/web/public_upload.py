"""A photo sent from the page: the multipart form read as a stream (the photo never past the size
limit), the CSRF token and the per-address limit checked, then the service's ``take_photo``.

The form's ``upload_key`` (random, made with the page) names the upload, so sending the same form
again (reload after POST, a double click) returns the first request instead of captioning twice.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from aiohttp import BodyPartReader, web

from bot.web.security import CSRF_FIELD, AddressLimits, check_csrf, client_address, visitor_id
from captionbot import texts
from captionbot.service import CaptionService, Rejected
from captionbot.settings import Settings
from captionbot.texts import web as web_texts

PLATFORM = "web"
_UPLOAD_KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")
_FIELD_MAX_BYTES = 1024  # the form's small fields (token, upload key)
_CHUNK = 64 * 1024
_BUSY = {"rate_limited", "too_many_pending", "queue_full"}


class Refusal(Exception):
    """An upload refused with ``status`` and a sentence for the visitor."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


@dataclass
class UploadForm:
    photo: bytes | None = None
    too_large: bool = False
    csrf: str | None = None
    upload_key: str | None = None


async def read_upload(request: web.Request, limit: int) -> UploadForm:
    """The multipart form, streamed: the photo is read up to ``limit`` bytes and no further."""
    form = UploadForm()
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue  # nested multipart: not from our form
            if part.name == "photo":
                form.photo = await _read_capped(part, limit)
                form.too_large = form.photo is None
                if form.too_large:
                    await _discard_rest(request, 2 * limit)
                    break
            elif part.name in (CSRF_FIELD, "upload_key"):
                raw = await _read_capped(part, _FIELD_MAX_BYTES)
                value = None if raw is None else raw.decode("utf-8", "replace").strip()
                setattr(form, "csrf" if part.name == CSRF_FIELD else "upload_key", value)
    except (AssertionError, ValueError, KeyError) as exc:  # not multipart, or malformed
        raise Refusal(400, web_texts.NO_FILE) from exc
    return form


async def _discard_rest(request: web.Request, bound: int) -> None:
    """Read and drop what is left of the body (up to ``bound`` bytes): a browser still sending a too
    large photo then gets the page saying so, instead of a connection reset mid-upload."""
    seen = 0
    while seen < bound and (chunk := await request.content.readany()):
        seen += len(chunk)


async def _read_capped(part: BodyPartReader, limit: int) -> bytes | None:
    """The part's bytes, or None as soon as there are more than ``limit``."""
    chunks, size = [], 0
    while chunk := await part.read_chunk(_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def upload(
    request: web.Request, service: CaptionService, settings: Settings, limits: AddressLimits, *, api: bool
) -> tuple[str, int]:
    """Check, limit and take one uploaded photo: (request id, queue position), or raise Refusal.
    ``api``: the page's script, whose CSRF token comes in a header."""
    visitor = await visitor_id(request)
    assert visitor is not None
    form = await read_upload(request, settings.max_image_bytes)
    if not await check_csrf(request, None if api else form.csrf or ""):
        raise Refusal(403, web_texts.BAD_FORM)
    if (wait := limits.uploads.take(client_address(request))) > 0:
        retry = max(1, math.ceil(wait))
        raise Refusal(429, texts.rate_limited(retry), retry)
    if form.too_large:
        raise Refusal(413, web_texts.too_large(settings.max_image_bytes))
    if not form.photo:
        raise Refusal(400, web_texts.NO_FILE)
    photo = form.photo
    key = form.upload_key if form.upload_key and _UPLOAD_KEY.fullmatch(form.upload_key) else None

    async def download() -> bytes:
        return photo

    outcome = await service.take_photo(
        platform=PLATFORM,
        platform_chat_id=visitor,
        chat_kind="private",
        platform_user_id=visitor,
        display_name=None,
        download=download,
        source_message_id=None,
        intake_key=None if key is None else f"web:{visitor}:{key}",
    )
    if isinstance(outcome, Rejected):
        status = 429 if outcome.reason in _BUSY else 400
        raise Refusal(status, outcome.message, outcome.retry_after)
    return outcome.request_id, outcome.queue_position
