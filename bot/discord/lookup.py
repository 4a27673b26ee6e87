"""Read-only look-up of one caption: its text, who asked for it, and which stored image it describes.

:class:`~captionbot.service.CaptionService` has no call for this yet, and the buttons need it: the
"Better caption" modal is pre-filled with the current text, "Alt text" re-posts the stored image
(from the service's :class:`~captionbot.storage.ImageStore`, never re-downloaded) and only for the
person who asked. So this module reads the service's own database with one SELECT, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from captionbot.service import CaptionService
from captionbot.storage.models import Caption, CaptionRequest, Image, Platform, User

_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/heic": "heic",
    "image/heif": "heif",
}


@dataclass(frozen=True)
class CaptionRecord:
    caption_id: int
    text: str
    requester_id: str  # the Discord user id of whoever asked for the caption
    image_sha256: str
    image_mime: str
    image_purged: bool
    band: str | None = None  # how sure the model is (captionbot.wording)
    hint: str | None = None

    @property
    def filename(self) -> str:
        return f"image.{_EXTENSIONS.get(self.image_mime, 'png')}"


async def find_caption(service: CaptionService, caption_id: int) -> CaptionRecord | None:
    """The Discord caption ``caption_id``, or None (deleted by /forget, or not a Discord caption)."""
    query = (
        select(
            Caption.text, User.platform_user_id, Image.sha256, Image.mime, Image.purged_at, Caption.band, Caption.hint
        )
        .join(CaptionRequest, Caption.request_id == CaptionRequest.id)
        .join(User, CaptionRequest.requester_id == User.id)
        .join(Image, CaptionRequest.image_id == Image.id)
        .where(Caption.id == caption_id, CaptionRequest.platform == Platform.DISCORD)
    )
    async with service.session_factory() as session:
        row = (await session.execute(query)).first()
    if row is None:
        return None
    text, requester, sha, mime, purged_at, band, hint = row
    return CaptionRecord(caption_id, text, requester, sha, mime, purged_at is not None, band, hint)
