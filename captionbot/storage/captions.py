"""Captions and feedback: ratings and corrections, their totals, and feedback as training examples."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Literal

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from captionbot.storage.models import (
    Caption,
    CaptionRequest,
    Feedback,
    Image,
    Platform,
    User,
    utcnow,
)
from captionbot.storage.statements import dialect_insert


class Unset(Enum):
    UNSET = "UNSET"


#: "Leave this field as it is" for :func:`set_feedback` (``None`` means "clear it").
UNSET: Final = Unset.UNSET


async def caption_for_request(session: AsyncSession, *, request_id: int) -> Caption | None:
    return await session.scalar(select(Caption).where(Caption.request_id == request_id))


async def set_feedback(
    session: AsyncSession,
    *,
    caption_id: int,
    user_id: int,
    rating: int | None | Unset = UNSET,
    correction: str | None | Unset = UNSET,
) -> Feedback:
    """Create or change a user's feedback on a caption (one row per user per caption).

    Fields left ``UNSET`` keep their value, ``None`` clears them; an empty correction is None.
    Changing the correction's text clears its review.
    """
    if rating is UNSET and correction is UNSET:
        raise ValueError("set_feedback needs a rating or a correction")
    if isinstance(correction, str):
        correction = correction.strip() or None
    now = utcnow()
    changes: dict[str, Any] = {"updated_at": now}
    if rating is not UNSET:
        changes["rating"] = rating
    if correction is not UNSET:
        changes["correction"] = correction
        # A moderator's verdict was about the old text: a changed correction needs a new review.
        changes["review"] = case((Feedback.correction.is_distinct_from(correction), None), else_=Feedback.review)
    stmt = (
        dialect_insert(session, Feedback)
        .values(
            caption_id=caption_id,
            user_id=user_id,
            rating=None if rating is UNSET else rating,
            correction=None if correction is UNSET else correction,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_update(index_elements=["caption_id", "user_id"], set_=changes)
        .returning(Feedback)
    )
    feedback: Feedback = (await session.scalars(stmt, execution_options={"populate_existing": True})).one()
    return feedback


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """One (photo, caption) pair for fine-tuning, from a person's feedback."""

    image_sha256: str
    text: str
    source: Literal["correction", "rating"]
    rating: int | None
    caption_id: int
    feedback_id: int
    model_version_id: int | None


def usable_feedback(*columns: Any, min_rating: int | None) -> Select[Any]:
    """SELECT ``columns`` FROM feedback that training may use: a correction, or a rating of at least
    ``min_rating`` (None: any rating), where neither the photo's requester nor the rater opted out.

    Joins feedback -> caption -> request and the two users, not the image, so a caller can either
    join ``Image`` itself or correlate with an outer query's ``Image``. The one definition serves the
    export, its purged-photo count and the retention sweep, so they can't disagree.
    """
    requester, rater = aliased(User), aliased(User)
    corrected = and_(Feedback.correction.is_not(None), Feedback.correction != "")
    rated = Feedback.rating.is_not(None) if min_rating is None else Feedback.rating >= min_rating
    return (
        select(*columns)
        .select_from(Feedback)
        .join(Caption, Feedback.caption_id == Caption.id)
        .join(CaptionRequest, Caption.request_id == CaptionRequest.id)
        .join(requester, CaptionRequest.requester_id == requester.id)
        .join(rater, Feedback.user_id == rater.id)
        .where(requester.training_opt_out.is_(False), rater.training_opt_out.is_(False), or_(corrected, rated))
    )


async def count_purged_training_photos(session: AsyncSession, *, min_rating: int | None = 1) -> int:
    """Photos that training_examples would use but skips because retention deleted their files."""
    stmt = (
        usable_feedback(func.count(func.distinct(Image.id)), min_rating=min_rating)
        .join(Image, CaptionRequest.image_id == Image.id)
        .where(Image.purged_at.is_not(None))
    )
    return await session.scalar(stmt) or 0


async def training_examples(
    session: AsyncSession, *, min_rating: int | None = 1, limit: int | None = None
) -> list[TrainingExample]:
    """Fine-tuning pairs from feedback, leaving out anyone who opted out.

    A correction is used as the target text whatever the rating; an uncorrected caption is used
    when rated at least ``min_rating`` (1 suits +1/-1 thumbs; use 4 for 1-5 stars; None takes every
    rated caption). Both the photo's requester and the rater must not have opted out; photos whose
    file was purged are skipped.
    """
    stmt = (
        usable_feedback(
            Image.sha256,
            Caption.text,
            Caption.id.label("caption_id"),
            Caption.model_version_id,
            Feedback.id.label("feedback_id"),
            Feedback.rating,
            Feedback.correction,
            min_rating=min_rating,
        )
        .join(Image, CaptionRequest.image_id == Image.id)
        .where(Image.purged_at.is_(None))
        .order_by(Feedback.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        TrainingExample(
            image_sha256=row.sha256,
            text=row.correction if row.correction else row.text,
            source="correction" if row.correction else "rating",
            rating=row.rating,
            caption_id=row.caption_id,
            feedback_id=row.feedback_id,
            model_version_id=row.model_version_id,
        )
        for row in await session.execute(stmt)
    ]


async def feedback_totals(session: AsyncSession, *, caption_id: int) -> tuple[int, int]:
    """(how many people rated the caption, sum of their ratings)."""
    count, total = (
        await session.execute(
            select(func.count(Feedback.rating), func.coalesce(func.sum(Feedback.rating), 0)).where(
                Feedback.caption_id == caption_id
            )
        )
    ).one()
    return int(count or 0), int(total or 0)


@dataclass(frozen=True, slots=True)
class CaptionLookup:
    """One caption with who asked for it and which stored photo it describes."""

    text: str
    requester_id: str  # platform user id
    image_sha256: str
    image_mime: str
    image_purged: bool
    band: str | None
    hint: str | None
    photo_text: str | None = None  # the text read in the photo (captions.photo_text)


async def caption_lookup(session: AsyncSession, *, caption_id: int, platform: Platform | str) -> CaptionLookup | None:
    """Caption ``caption_id`` if it exists and was asked for on ``platform``."""
    query = (
        select(
            Caption.text,
            User.platform_user_id,
            Image.sha256,
            Image.mime,
            Image.purged_at,
            Caption.band,
            Caption.hint,
            Caption.photo_text,
        )
        .join(CaptionRequest, Caption.request_id == CaptionRequest.id)
        .join(User, CaptionRequest.requester_id == User.id)
        .join(Image, CaptionRequest.image_id == Image.id)
        .where(Caption.id == caption_id, CaptionRequest.platform == Platform(platform))
    )
    row = (await session.execute(query)).first()
    if row is None:
        return None
    text, requester, sha, mime, purged_at, band, hint, photo_text = row
    return CaptionLookup(text, requester, sha, mime, purged_at is not None, band, hint, photo_text)


async def caption_exists(session: AsyncSession, *, caption_id: int) -> bool:
    """False once /forget (or retention) deleted it, or for a forged id."""
    return await session.get(Caption, caption_id) is not None


async def count_captions(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Caption)) or 0)
