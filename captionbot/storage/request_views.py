"""One request as its requester sees it on a page: status, caption, labels, attention, their own
feedback. Only the person who asked gets it (the web page shows nothing to anyone else)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from captionbot.storage.models import (
    Caption,
    CaptionRequest,
    Feedback,
    Image,
    ModelVersion,
    Platform,
    RequestStatus,
    User,
    utcnow,
)
from captionbot.storage.statements import dialect_insert


@dataclass(frozen=True, slots=True)
class RequestRow:
    request_id: int
    public_id: str
    status: RequestStatus
    created_at: datetime
    error: str | None
    error_code: str | None
    image_sha256: str
    image_mime: str
    image_purged: bool
    requester_user_id: int
    caption_id: int | None
    text: str | None
    confidence: float | None
    band: str | None
    hint: str | None
    labels: list[dict[str, Any]] | None
    attention: dict[str, Any] | None
    photo_text: str | None
    model_version: str | None
    rating: int | None
    correction: str | None
    flagged: bool


#: What :func:`_person_requests` selects per request (the caption and the rest are outer joins).
_Found = tuple[CaptionRequest, str, str, datetime | None, Caption, str, int | None, str | None, datetime | None]


def _person_requests(platform: Platform | str, platform_user_id: str) -> Select[*_Found]:
    """SELECT the requests this person on ``platform`` made, with all a page shows of each."""
    return (
        select(
            CaptionRequest,
            Image.sha256,
            Image.mime,
            Image.purged_at,
            Caption,
            ModelVersion.name,
            Feedback.rating,
            Feedback.correction,
            Feedback.flagged_at,
        )
        .join(User, CaptionRequest.requester_id == User.id)
        .join(Image, CaptionRequest.image_id == Image.id)
        .outerjoin(Caption, Caption.request_id == CaptionRequest.id)
        .outerjoin(ModelVersion, Caption.model_version_id == ModelVersion.id)
        .outerjoin(Feedback, and_(Feedback.caption_id == Caption.id, Feedback.user_id == User.id))
        .where(CaptionRequest.platform == Platform(platform), User.platform_user_id == str(platform_user_id))
    )


def _row(found: Row[*_Found]) -> RequestRow:
    req, sha, mime, purged_at, caption, version, rating, correction, flagged_at = found
    return RequestRow(
        request_id=req.id,
        public_id=req.public_id,
        status=req.status,
        created_at=req.created_at,
        error=req.error,
        error_code=str(req.error_code) if req.error_code else None,
        image_sha256=sha,
        image_mime=mime,
        image_purged=purged_at is not None,
        requester_user_id=req.requester_id,
        caption_id=caption.id if caption else None,
        text=caption.text if caption else None,
        confidence=caption.confidence if caption else None,
        band=caption.band if caption else None,
        hint=caption.hint if caption else None,
        labels=list(caption.labels or []) if caption else None,
        attention=dict(caption.attention) if caption and caption.attention else None,
        photo_text=caption.photo_text if caption else None,
        model_version=version,
        rating=rating,
        correction=correction,
        flagged=flagged_at is not None,
    )


async def request_row(
    session: AsyncSession, *, public_id: str, platform: Platform | str, platform_user_id: str
) -> RequestRow | None:
    """Request ``public_id`` if this person on ``platform`` asked for it, else None."""
    stmt = _person_requests(platform, platform_user_id).where(CaptionRequest.public_id == public_id)
    found = (await session.execute(stmt)).first()
    return None if found is None else _row(found)


async def recent_rows(
    session: AsyncSession, *, platform: Platform | str, platform_user_id: str, limit: int = 20
) -> list[RequestRow]:
    """This person's latest requests on ``platform``, newest first, in one query."""
    stmt = (
        _person_requests(platform, platform_user_id)
        .order_by(CaptionRequest.created_at.desc(), CaptionRequest.id.desc())
        .limit(limit)
    )
    return [_row(found) for found in await session.execute(stmt)]


async def set_flag(session: AsyncSession, *, caption_id: int, user_id: int, flagged: bool) -> None:
    """This person reports caption ``caption_id`` as harmful or offensive (or takes it back)."""
    now = utcnow()
    stmt = (
        dialect_insert(session, Feedback)
        .values(
            caption_id=caption_id, user_id=user_id, flagged_at=now if flagged else None, created_at=now, updated_at=now
        )
        # Keep updated_at: a flag is not new training feedback.
        .on_conflict_do_update(index_elements=["caption_id", "user_id"], set_={"flagged_at": now if flagged else None})
    )
    await session.execute(stmt)
