"""Queries the queue/worker half needs that :mod:`captionbot.storage.queries` does not have.

Everything else (intake, completion, failure, the delivery claim/lease, feedback, forgetting,
model versions) is in ``queries``; these few fill gaps:

* :func:`claim_job` - claim by *public* id (what a job message carries) and also take over a
  ``running`` request whose worker died (untouched for longer than the broker's reclaim time), so
  a re-delivered message is processed at once instead of waiting for the stale sweep;
* :func:`release_claim` - ``running -> queued`` without spending an attempt (graceful shutdown);
* :func:`image_digests`, :func:`delivery_extras`, :func:`feedback_totals`, :func:`user_counts`.

Like ``queries``: an ``AsyncSession`` first, keyword-only arguments, no commits; state changes are
single conditional ``UPDATE ... RETURNING`` statements, so racing processes can't both win.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from captionbot.storage.models import (
    PENDING_STATUSES,
    Caption,
    CaptionRequest,
    Feedback,
    Image,
    ModelVersion,
    RequestStatus,
    User,
    utcnow,
)


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs after a successful claim."""

    id: int
    public_id: str
    image_sha256: str
    attempts: int  # including this one
    created_at: datetime


async def claim_job(session: AsyncSession, *, public_id: str, stale_before: datetime) -> ClaimedJob | None:
    """``queued -> running`` (attempts + 1) by public id; None if it isn't ours to run.

    A ``running`` request not touched since ``stale_before`` is taken over too: its worker died,
    and the broker re-delivered the message after the same idle time.
    """
    now = utcnow()
    row = (
        await session.execute(
            update(CaptionRequest)
            .where(
                CaptionRequest.public_id == public_id,
                or_(
                    CaptionRequest.status == RequestStatus.QUEUED,
                    and_(CaptionRequest.status == RequestStatus.RUNNING, CaptionRequest.updated_at < stale_before),
                ),
            )
            .values(status=RequestStatus.RUNNING, attempts=CaptionRequest.attempts + 1, started_at=now, updated_at=now)
            .returning(CaptionRequest.id, CaptionRequest.attempts, CaptionRequest.image_id, CaptionRequest.created_at)
        )
    ).first()
    if row is None:
        return None
    sha = (await session.execute(select(Image.sha256).where(Image.id == row.image_id))).scalar_one()
    return ClaimedJob(row.id, public_id, sha, row.attempts, row.created_at)


async def release_claim(session: AsyncSession, *, request_id: int) -> bool:
    """``running -> queued`` giving the attempt back (the worker stopped before running it)."""
    res = await session.execute(
        update(CaptionRequest)
        .where(CaptionRequest.id == request_id, CaptionRequest.status == RequestStatus.RUNNING)
        .values(
            status=RequestStatus.QUEUED,
            attempts=case((CaptionRequest.attempts > 0, CaptionRequest.attempts - 1), else_=0),
            updated_at=utcnow(),
        )
        .returning(CaptionRequest.id)
    )
    return res.first() is not None


async def image_digests(session: AsyncSession, *, image_ids: Iterable[int]) -> dict[int, str]:
    """``Image.id -> sha256`` for the given ids."""
    ids = set(image_ids)
    if not ids:
        return {}
    rows = await session.execute(select(Image.id, Image.sha256).where(Image.id.in_(ids)))
    return {row[0]: row[1] for row in rows}


@dataclass(frozen=True)
class DeliveryExtras:
    platform_user_id: str
    model_version: str | None


async def delivery_extras(session: AsyncSession, *, request_id: int) -> DeliveryExtras:
    """The requester's platform id and the caption's model version name, for a Delivery."""
    user_id = (
        await session.execute(
            select(User.platform_user_id)
            .join(CaptionRequest, CaptionRequest.requester_id == User.id)
            .where(CaptionRequest.id == request_id)
        )
    ).scalar_one()
    version = (
        await session.execute(
            select(ModelVersion.name)
            .join(Caption, Caption.model_version_id == ModelVersion.id)
            .where(Caption.request_id == request_id)
        )
    ).scalar_one_or_none()
    return DeliveryExtras(user_id, version)


async def feedback_totals(session: AsyncSession, *, caption_id: int) -> tuple[int, int]:
    """(how many people rated the caption, sum of their ratings)."""
    count, total = (
        await session.execute(
            select(func.count(Feedback.rating), func.coalesce(func.sum(Feedback.rating), 0)).where(
                Feedback.caption_id == caption_id
            )
        )
    ).one()
    return int(count), int(total)


@dataclass(frozen=True)
class UserCounts:
    pending: int
    failed: int  # finished without a caption


async def user_counts(session: AsyncSession, *, user_id: int) -> UserCounts:
    pending = (
        await session.execute(
            select(func.count())
            .select_from(CaptionRequest)
            .where(CaptionRequest.requester_id == user_id, CaptionRequest.status.in_(PENDING_STATUSES))
        )
    ).scalar_one()
    failed = (
        await session.execute(
            select(func.count())
            .select_from(CaptionRequest)
            .where(
                CaptionRequest.requester_id == user_id,
                CaptionRequest.status.in_([RequestStatus.FAILED, RequestStatus.DELIVERED]),
                CaptionRequest.id.not_in(select(Caption.request_id)),
            )
        )
    ).scalar_one()
    return UserCounts(int(pending), int(failed))


__all__ = [
    "ClaimedJob",
    "DeliveryExtras",
    "UserCounts",
    "claim_job",
    "delivery_extras",
    "feedback_totals",
    "image_digests",
    "release_claim",
    "user_counts",
]
