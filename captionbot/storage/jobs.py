"""Requests and jobs: intake (image + request rows), the queue, and a worker's claim -> complete | fail.

Like every storage module: an ``AsyncSession`` first, keyword-only arguments, no commits (the
caller owns the transaction)::

    async with session_factory.begin() as session:  # commit on success, rollback on error
        claimed = await claim_job(session, public_id=job.request_id, stale_before=cutoff)

State changes that must not race (claiming, completing, failing) are single conditional
``UPDATE ... RETURNING`` statements, so two workers can't both win, on PostgreSQL and SQLite alike.
:func:`claim_job` claims by the *public* id a job message carries, and also takes over a
``running`` request whose worker died, so a re-delivered message is processed at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from captionbot.jobs import ErrorCode
from captionbot.storage.captions import caption_for_request
from captionbot.storage.models import (
    PENDING_STATUSES,
    Caption,
    CaptionRequest,
    Image,
    Platform,
    RequestStatus,
    utcnow,
)
from captionbot.storage.statements import FETCH, dialect_insert


async def add_image(
    session: AsyncSession, *, sha256: str, size_bytes: int, width: int, height: int, mime: str
) -> Image:
    """The image row for ``sha256``, created if new. Call after ``ImageStore.put``.

    Re-uploading a photo whose file the retention sweep removed marks it present again.
    """
    await session.execute(
        dialect_insert(session, Image)
        .values(sha256=sha256, size_bytes=size_bytes, width=width, height=height, mime=mime)
        .on_conflict_do_update(index_elements=["sha256"], set_={"purged_at": None}, where=Image.purged_at.is_not(None))
    )
    return (
        await session.scalars(
            select(Image).where(Image.sha256 == sha256), execution_options={"populate_existing": True}
        )
    ).one()


async def create_request(
    session: AsyncSession,
    *,
    platform: Platform | str,
    chat_id: int,
    requester_id: int,
    image_id: int,
    source_message_id: str | int | None = None,
    reply_context: dict[str, Any] | None = None,
    status_message_id: str | int | None = None,
    intake_key: str | None = None,
) -> CaptionRequest:
    """A new ``queued`` request (enqueue its job after the transaction commits). ``intake_key`` is
    unique: a second request with the same key fails with IntegrityError (see :func:`find_by_intake_key`)."""
    request = CaptionRequest(
        platform=Platform(platform),
        chat_id=chat_id,
        requester_id=requester_id,
        image_id=image_id,
        source_message_id=None if source_message_id is None else str(source_message_id),
        reply_context=dict(reply_context or {}),
        status_message_id=None if status_message_id is None else str(status_message_id),
        intake_key=intake_key,
        status=RequestStatus.QUEUED,
        attempts=0,
    )
    session.add(request)
    await session.flush()
    return request


async def find_by_intake_key(session: AsyncSession, *, intake_key: str) -> CaptionRequest | None:
    """The request an incoming message already made (the platform delivered the message again)."""
    return await session.scalar(select(CaptionRequest).where(CaptionRequest.intake_key == intake_key))


async def get_request_by_public_id(session: AsyncSession, *, public_id: str) -> CaptionRequest | None:
    """Look a request up by the id in a job payload or a button's callback data."""
    return await session.scalar(select(CaptionRequest).where(CaptionRequest.public_id == public_id))


async def set_status_message(session: AsyncSession, *, request_id: int, status_message_id: str | int) -> None:
    """Remember the "you are #N in the queue" message, to edit it later."""
    await session.execute(
        update(CaptionRequest).where(CaptionRequest.id == request_id).values(status_message_id=str(status_message_id))
    )


async def count_pending(session: AsyncSession) -> int:
    """Requests queued or running, over all users (for the global queue bound)."""
    return (
        await session.scalar(
            select(func.count()).select_from(CaptionRequest).where(CaptionRequest.status.in_(PENDING_STATUSES))
        )
        or 0
    )


async def count_pending_for_user(session: AsyncSession, *, user_id: int) -> int:
    """The user's requests queued or running (for the per-user bound)."""
    return (
        await session.scalar(
            select(func.count())
            .select_from(CaptionRequest)
            .where(CaptionRequest.requester_id == user_id, CaptionRequest.status.in_(PENDING_STATUSES))
        )
        or 0
    )


async def queue_position(session: AsyncSession, *, request_id: int) -> int | None:
    """1-based place of a queued request in the queue (oldest first), 0 while it runs.

    None once it is done, failed or delivered (or unknown).
    """
    status = await session.scalar(select(CaptionRequest.status).where(CaptionRequest.id == request_id))
    if status == RequestStatus.RUNNING:
        return 0
    if status != RequestStatus.QUEUED:
        return None
    ahead = await session.scalar(
        select(func.count())
        .select_from(CaptionRequest)
        .where(CaptionRequest.status == RequestStatus.QUEUED, CaptionRequest.id < request_id)
    )
    return (ahead or 0) + 1


async def complete_request(
    session: AsyncSession,
    *,
    request_id: int,
    text: str,
    confidence: float | None = None,
    model_version_id: int | None = None,
    decoding: dict[str, Any] | None = None,
    latency_ms: int | None = None,
    band: str | None = None,
    hint: str | None = None,
    labels: list[dict[str, Any]] | None = None,
    attention: dict[str, Any] | None = None,
    photo_text: str | None = None,
) -> Caption | None:
    """Store the caption and mark the request ``done``; idempotent.

    A second completion of the same request (a redelivered job) returns the caption stored first
    and changes nothing. A late result for a request that failed but was not yet delivered still
    wins (the user gets a caption instead of an apology) unless a bot is already delivering the
    failure. Returns None when the request no longer
    takes a result: it was deleted (the user asked to be forgotten) or its failure was delivered.
    """
    now = utcnow()
    moved = await session.execute(
        update(CaptionRequest)
        .where(
            CaptionRequest.id == request_id,
            or_(
                CaptionRequest.status.in_(PENDING_STATUSES),
                # A failure nobody has started to deliver can still be replaced by the caption.
                and_(CaptionRequest.status == RequestStatus.FAILED, CaptionRequest.delivered_at.is_(None)),
            ),
        )
        .values(status=RequestStatus.DONE, finished_at=now, updated_at=now, error=None, error_code=None)
        .returning(CaptionRequest.id),
        execution_options=FETCH,
    )
    if moved.first() is None:
        return await caption_for_request(session, request_id=request_id)
    caption = Caption(
        request_id=request_id,
        text=text,
        confidence=confidence,
        model_version_id=model_version_id,
        decoding=dict(decoding or {}),
        latency_ms=latency_ms,
        band=band,
        hint=hint,
        labels=labels,
        attention=attention,
        photo_text=photo_text,
        created_at=now,
    )
    session.add(caption)
    await session.flush()
    return caption


async def fail_request(
    session: AsyncSession,
    *,
    request_id: int,
    code: ErrorCode,
    message: str,
    max_attempts: int,
    permanent: bool = False,
) -> bool:
    """Record a failed attempt of a ``running`` request: why (``code``) and what to tell the person.

    Returns True if the request went back to ``queued`` (attempts < ``max_attempts``: re-enqueue
    its job), False if it is now ``failed`` for good (or was not running: nothing to retry).
    ``permanent=True`` (e.g. an undecodable photo) fails it at once.
    """
    now = utcnow()
    row = (
        await session.execute(
            select(CaptionRequest.attempts).where(
                CaptionRequest.id == request_id, CaptionRequest.status == RequestStatus.RUNNING
            )
        )
    ).first()
    if row is None:
        return False
    retry = not permanent and row.attempts < max_attempts
    values: dict[str, Any] = {"error_code": ErrorCode(code), "error": message[:10_000], "updated_at": now}
    if retry:
        values["status"] = RequestStatus.QUEUED
    else:
        values |= {"status": RequestStatus.FAILED, "finished_at": now}
    # Conditional on still running, so a concurrent completion is never overwritten.
    moved = await session.execute(
        update(CaptionRequest)
        .where(CaptionRequest.id == request_id, CaptionRequest.status == RequestStatus.RUNNING)
        .values(**values)
        .returning(CaptionRequest.id),
        execution_options=FETCH,
    )
    return retry and moved.first() is not None


async def requeue_stale_requests(
    session: AsyncSession, *, older_than: datetime, max_attempts: int
) -> list[CaptionRequest]:
    """Recover lost jobs at worker start: returns the stale requests to enqueue again.

    A request stuck in ``running`` (its worker died) goes back to ``queued``, or to ``failed`` once
    it has used ``max_attempts`` (a photo that kills the worker must not loop forever). Stale
    ``queued`` ones are returned too. Their ``updated_at`` is bumped in the same statement, so two
    workers starting at once don't both re-enqueue them.
    """
    now = utcnow()
    stale = and_(CaptionRequest.status.in_(PENDING_STATUSES), CaptionRequest.updated_at < older_than)
    await session.execute(
        update(CaptionRequest)
        .where(stale, CaptionRequest.status == RequestStatus.RUNNING, CaptionRequest.attempts >= max_attempts)
        # No message: the person is told the generic failure for the code (captionbot.texts).
        .values(status=RequestStatus.FAILED, error_code=ErrorCode.CAPTION_ERROR, error=None, finished_at=now),
        execution_options=FETCH,
    )
    result = await session.scalars(
        update(CaptionRequest)
        .where(stale)
        .values(status=RequestStatus.QUEUED, updated_at=now)
        .returning(CaptionRequest),
        execution_options={"populate_existing": True},
    )
    return sorted(result, key=lambda r: r.id)


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
