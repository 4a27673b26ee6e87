"""What a moderator's page reads: flagged captions, each person's feedback counts, and ratings per
model version per day (the rating-over-time plot)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from captionbot.storage.models import Caption, CaptionRequest, Feedback, Image, ModelVersion, Platform, User
from captionbot.storage.statements import chunks, rows_changed


@dataclass(frozen=True, slots=True)
class FlaggedRow:
    caption_id: int
    text: str
    platform: Platform
    image_sha256: str
    flags: int
    last_flagged_at: datetime


async def flagged_captions(session: AsyncSession, *, limit: int = 100) -> list[FlaggedRow]:
    """Captions people reported, most reports first."""
    flags = func.count(Feedback.id)
    stmt = (
        select(Caption.id, Caption.text, CaptionRequest.platform, Image.sha256, flags, func.max(Feedback.flagged_at))
        .join(Caption, Feedback.caption_id == Caption.id)
        .join(CaptionRequest, Caption.request_id == CaptionRequest.id)
        .join(Image, CaptionRequest.image_id == Image.id)
        .where(Feedback.flagged_at.is_not(None))
        .group_by(Caption.id, Caption.text, CaptionRequest.platform, Image.sha256)
        .order_by(flags.desc(), func.max(Feedback.flagged_at).desc())
        .limit(limit)
    )
    return [
        FlaggedRow(cid, text, Platform(p), sha, int(n), last)
        for cid, text, p, sha, n, last in await session.execute(stmt)
        if last is not None
    ]


async def clear_flags(session: AsyncSession, *, caption_ids: Sequence[int]) -> int:
    """A moderator looked at these captions: their reports are cleared (rows changed)."""
    changed = 0
    for chunk in chunks(sorted(set(caption_ids))):
        changed += await rows_changed(
            session,
            update(Feedback)
            .where(Feedback.caption_id.in_(chunk), Feedback.flagged_at.is_not(None))
            .values(flagged_at=None, updated_at=Feedback.updated_at),
        )
    return changed


@dataclass(frozen=True, slots=True)
class PersonRow:
    user_id: int
    platform: Platform
    ratings: int
    corrections: int
    approved: int
    rejected: int
    flags: int
    training_opt_out: bool
    last_at: datetime


async def people_feedback(session: AsyncSession, *, limit: int = 100) -> list[PersonRow]:
    """Per person: how much feedback they gave, most active first (no names: user ids only)."""
    corrections = func.count(Feedback.correction)
    stmt = (
        select(
            User.id,
            User.platform,
            func.count(Feedback.rating),
            corrections,
            func.count(Feedback.review).filter(Feedback.review == "approved"),
            func.count(Feedback.review).filter(Feedback.review == "rejected"),
            func.count(Feedback.flagged_at),
            User.training_opt_out,
            func.max(Feedback.updated_at),
        )
        .join(User, Feedback.user_id == User.id)
        .group_by(User.id, User.platform, User.training_opt_out)
        .order_by(func.count(Feedback.id).desc(), User.id)
        .limit(limit)
    )
    return [
        PersonRow(uid, Platform(p), int(r), int(c), int(a), int(j), int(f), bool(out), last)
        for uid, p, r, c, a, j, f, out, last in await session.execute(stmt)
    ]


async def ratings_per_day(session: AsyncSession, *, since: datetime) -> list[tuple[str, date, int, int]]:
    """(model version, day, rating, how many) for ratings given since ``since``; days in UTC."""
    day = func.date(Feedback.updated_at)
    stmt = (
        select(ModelVersion.name, day, Feedback.rating, func.count())
        .join(Caption, Feedback.caption_id == Caption.id)
        .join(ModelVersion, Caption.model_version_id == ModelVersion.id)
        .where(Feedback.rating.is_not(None), Feedback.updated_at >= since)
        .group_by(ModelVersion.name, day, Feedback.rating)
        .order_by(day)
    )
    out = []
    for name, d, rating, n in await session.execute(stmt):
        out.append((name, d if isinstance(d, date) else date.fromisoformat(str(d)[:10]), int(rating), int(n)))
    return out
