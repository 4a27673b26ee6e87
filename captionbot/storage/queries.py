"""Async query functions: the only way the bots, the worker and training touch the database.

Every function takes an ``AsyncSession`` first and keyword-only arguments after it. None of them
commits: the caller owns the transaction, usually one per unit of work::

    async with session_factory.begin() as session:  # commit on success, rollback on error
        request = await claim_request(session, request_id=job.request_id)

State changes that must not race (claiming, completing, failing, delivering a request) are single
conditional ``UPDATE ... RETURNING`` statements, so two workers or two bot processes can't both win,
on PostgreSQL and on SQLite alike. Get-or-create and feedback upserts use ``INSERT ... ON CONFLICT``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final, Literal

from sqlalchemy import Select, and_, delete, event, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased, selectinload

from captionbot.jobs import ErrorCode
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.models import (
    PENDING_STATUSES,
    UNDELIVERED_STATUSES,
    Caption,
    CaptionRequest,
    Chat,
    ChatKind,
    Feedback,
    Image,
    ModelStatus,
    ModelVersion,
    Platform,
    RequestStatus,
    User,
    utcnow,
)

log = logging.getLogger(__name__)


class _Unset(Enum):
    UNSET = "UNSET"


#: "Leave this field as it is" for :func:`set_feedback` (``None`` means "clear it").
UNSET: Final = _Unset.UNSET

# Bulk UPDATE/DELETE: also update (or drop) the matching objects already loaded in the session.
_FETCH: Final = {"synchronize_session": "fetch"}
_CHUNK = 500  # rows per IN (...) list: far below SQLite's and asyncpg's bound-parameter limits


def _insert(session: AsyncSession, model: type[Any]) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing/do_update`` on both backends."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(model)
    if name == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"unsupported database backend {name!r} (use PostgreSQL or SQLite)")


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


# --- users and chats ---------------------------------------------------------------------------


async def get_or_create_user(
    session: AsyncSession,
    *,
    platform: Platform | str,
    platform_user_id: str | int,
    display_name: str | None = None,
) -> User:
    """The user with this platform id, created on first sight; ``display_name`` is kept current."""
    platform = Platform(platform)
    key = str(platform_user_id)
    await session.execute(
        _insert(session, User)
        .values(platform=platform, platform_user_id=key, display_name=display_name, training_opt_out=False)
        .on_conflict_do_nothing(index_elements=["platform", "platform_user_id"])
    )
    user = (await session.scalars(select(User).where(User.platform == platform, User.platform_user_id == key))).one()
    if display_name is not None and user.display_name != display_name:
        user.display_name = display_name
    return user


async def get_user(session: AsyncSession, *, platform: Platform | str, platform_user_id: str | int) -> User | None:
    """The user with this platform id, or None (never creates one)."""
    return await session.scalar(
        select(User).where(User.platform == Platform(platform), User.platform_user_id == str(platform_user_id))
    )


async def set_training_opt_out(session: AsyncSession, *, user_id: int, opt_out: bool) -> bool:
    """Opt the user out of (or back into) training use of their photos and feedback.

    Takes effect at once for :func:`training_examples`. Returns False if there is no such user.
    """
    result = await session.execute(
        update(User).where(User.id == user_id).values(training_opt_out=opt_out).returning(User.id)
    )
    return result.first() is not None


async def get_or_create_chat(
    session: AsyncSession,
    *,
    platform: Platform | str,
    platform_chat_id: str | int,
    kind: ChatKind | str,
) -> Chat:
    """The chat with this platform id, created on first sight (``kind`` is used only then)."""
    platform = Platform(platform)
    key = str(platform_chat_id)
    await session.execute(
        _insert(session, Chat)
        .values(platform=platform, platform_chat_id=key, kind=ChatKind(kind), autocaption=False)
        .on_conflict_do_nothing(index_elements=["platform", "platform_chat_id"])
    )
    return (await session.scalars(select(Chat).where(Chat.platform == platform, Chat.platform_chat_id == key))).one()


async def set_chat_autocaption(session: AsyncSession, *, chat_id: int, enabled: bool) -> None:
    """Turn captioning of every photo posted in a chat on or off."""
    await session.execute(update(Chat).where(Chat.id == chat_id).values(autocaption=enabled))


# --- images ------------------------------------------------------------------------------------


async def add_image(
    session: AsyncSession, *, sha256: str, size_bytes: int, width: int, height: int, mime: str
) -> Image:
    """The image row for ``sha256``, created if new. Call after ``ImageStore.put``.

    Re-uploading a photo whose file the retention sweep removed marks it present again.
    """
    await session.execute(
        _insert(session, Image)
        .values(sha256=sha256, size_bytes=size_bytes, width=width, height=height, mime=mime)
        .on_conflict_do_update(index_elements=["sha256"], set_={"purged_at": None}, where=Image.purged_at.is_not(None))
    )
    return (
        await session.scalars(
            select(Image).where(Image.sha256 == sha256), execution_options={"populate_existing": True}
        )
    ).one()


# --- caption requests --------------------------------------------------------------------------


async def create_request(
    session: AsyncSession,
    *,
    platform: Platform | str,
    chat_id: int,
    requester_id: int,
    image_id: int,
    source_message_id: str | int | None = None,
    reply_context: dict[str, Any] | None = None,
) -> CaptionRequest:
    """A new ``queued`` request (enqueue its job after the transaction commits)."""
    request = CaptionRequest(
        platform=Platform(platform),
        chat_id=chat_id,
        requester_id=requester_id,
        image_id=image_id,
        source_message_id=None if source_message_id is None else str(source_message_id),
        reply_context=dict(reply_context or {}),
        status=RequestStatus.QUEUED,
        attempts=0,
    )
    session.add(request)
    await session.flush()
    return request


async def get_request(session: AsyncSession, *, request_id: int) -> CaptionRequest | None:
    return await session.get(CaptionRequest, request_id, populate_existing=True)


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


async def claim_request(session: AsyncSession, *, request_id: int) -> CaptionRequest | None:
    """Atomically move a ``queued`` request to ``running`` and count the attempt.

    Returns the request, or None if it is not queued (another worker has it, it is finished, or it
    was deleted): the worker then drops the job. This is the idempotency key that makes an
    at-least-once job queue caption each request once at a time.
    """
    now = utcnow()
    stmt = (
        update(CaptionRequest)
        .where(CaptionRequest.id == request_id, CaptionRequest.status == RequestStatus.QUEUED)
        .values(
            status=RequestStatus.RUNNING,
            attempts=CaptionRequest.attempts + 1,
            started_at=now,
            updated_at=now,
        )
        .returning(CaptionRequest)
    )
    result = await session.scalars(stmt, execution_options={"populate_existing": True})
    return result.one_or_none()


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
        execution_options=_FETCH,
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
        execution_options=_FETCH,
    )
    return retry and moved.first() is not None


DEFAULT_DELIVERY_LEASE: Final = timedelta(minutes=2)
#: Reply attempts before a reply is given up (each failed send, or a bot dying mid-send, is one).
DEFAULT_DELIVERY_ATTEMPTS: Final = 8


async def claim_delivery(
    session: AsyncSession,
    *,
    request_id: int,
    lease: timedelta = DEFAULT_DELIVERY_LEASE,
    max_attempts: int = DEFAULT_DELIVERY_ATTEMPTS,
) -> CaptionRequest | None:
    """Take the right to send a request's reply; None if it is not ours to send.

    The reply protocol, each step its own short transaction::

        claim_delivery -> send the reply -> mark_delivered   (or release_delivery if sending failed)

    Only one process holds the claim at a time (a live path and a start-up resend, or two bot
    replicas, never both reply). A claim not marked within ``lease`` (the bot died mid-send) can
    be taken again, so a reply is never lost: the one duplicate possible is a crash between
    sending and marking. Each claim counts an attempt; after ``max_attempts`` the reply is given up
    (a chat that can never get it must not be retried forever). Returns the request with ``caption``
    and ``chat`` loaded.
    """
    now = utcnow()
    result = await session.scalars(
        update(CaptionRequest)
        .where(
            CaptionRequest.id == request_id,
            CaptionRequest.status.in_(UNDELIVERED_STATUSES),
            or_(CaptionRequest.delivered_at.is_(None), CaptionRequest.delivered_at <= now - lease),
            CaptionRequest.delivery_attempts < max_attempts,
        )
        .values(delivered_at=now, delivery_attempts=CaptionRequest.delivery_attempts + 1)
        .returning(CaptionRequest),
        execution_options={"populate_existing": True},
    )
    request = result.one_or_none()
    if request is not None:
        await session.refresh(request, ["caption", "chat"])
    return request


async def release_delivery(session: AsyncSession, *, request_id: int) -> None:
    """Give a delivery claim back at once (sending failed; let the next attempt retry now)."""
    await session.execute(
        update(CaptionRequest)
        .where(CaptionRequest.id == request_id, CaptionRequest.status.in_(UNDELIVERED_STATUSES))
        .values(delivered_at=None),
        execution_options=_FETCH,
    )


async def mark_delivered(session: AsyncSession, *, request_id: int, reply_message_id: str | int | None = None) -> bool:
    """Record that the bot sent the result (caption or failure notice) of a request.

    Returns True for the call that moved it to ``delivered``, False if it already was (or has no
    result yet). Use after :func:`claim_delivery` and a successful send.
    """
    now = utcnow()
    result = await session.execute(
        update(CaptionRequest)
        .where(CaptionRequest.id == request_id, CaptionRequest.status.in_(UNDELIVERED_STATUSES))
        .values(
            status=RequestStatus.DELIVERED,
            reply_message_id=None if reply_message_id is None else str(reply_message_id),
            delivered_at=now,
            updated_at=now,
        )
        .returning(CaptionRequest.id),
        execution_options=_FETCH,
    )
    return result.first() is not None


async def stale_requests(session: AsyncSession, *, older_than: datetime) -> list[CaptionRequest]:
    """Queued or running requests not touched since ``older_than`` (lost jobs), oldest first."""
    rows = await session.scalars(
        select(CaptionRequest)
        .where(CaptionRequest.status.in_(PENDING_STATUSES), CaptionRequest.updated_at < older_than)
        .order_by(CaptionRequest.id)
    )
    return list(rows)


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
        execution_options=_FETCH,
    )
    result = await session.scalars(
        update(CaptionRequest)
        .where(stale)
        .values(status=RequestStatus.QUEUED, updated_at=now)
        .returning(CaptionRequest),
        execution_options={"populate_existing": True},
    )
    return sorted(result, key=lambda r: r.id)


async def undelivered_results(
    session: AsyncSession,
    *,
    platform: Platform | str | None = None,
    limit: int = 100,
    lease: timedelta = DEFAULT_DELIVERY_LEASE,
    max_attempts: int = DEFAULT_DELIVERY_ATTEMPTS,
) -> list[CaptionRequest]:
    """Done or failed requests whose reply was not sent yet, nobody is sending now, and not given up.

    Oldest first, with ``caption`` and ``chat`` loaded: what a bot resends after a restart (each
    through :func:`claim_delivery`).
    """
    cutoff = utcnow() - lease
    stmt = (
        select(CaptionRequest)
        .where(
            CaptionRequest.status.in_(UNDELIVERED_STATUSES),
            or_(CaptionRequest.delivered_at.is_(None), CaptionRequest.delivered_at <= cutoff),
            CaptionRequest.delivery_attempts < max_attempts,
        )
        .options(selectinload(CaptionRequest.caption), selectinload(CaptionRequest.chat))
        .order_by(CaptionRequest.id)
        .limit(limit)
    )
    if platform is not None:
        stmt = stmt.where(CaptionRequest.platform == Platform(platform))
    return list(await session.scalars(stmt))


async def caption_for_request(session: AsyncSession, *, request_id: int) -> Caption | None:
    return await session.scalar(select(Caption).where(Caption.request_id == request_id))


# --- feedback ----------------------------------------------------------------------------------


async def set_feedback(
    session: AsyncSession,
    *,
    caption_id: int,
    user_id: int,
    rating: int | None | _Unset = UNSET,
    correction: str | None | _Unset = UNSET,
) -> Feedback:
    """Create or change a user's feedback on a caption (one row per user per caption).

    Fields left ``UNSET`` keep their value, ``None`` clears them; an empty correction is None.
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
    stmt = (
        _insert(session, Feedback)
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
    return (await session.scalars(stmt, execution_options={"populate_existing": True})).one()


async def get_feedback(session: AsyncSession, *, caption_id: int, user_id: int) -> Feedback | None:
    return await session.scalar(select(Feedback).where(Feedback.caption_id == caption_id, Feedback.user_id == user_id))


# --- statistics --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserStats:
    requests: int
    captions: int
    ratings_given: int
    average_rating_given: float | None
    corrections_given: int


@dataclass(frozen=True, slots=True)
class GlobalStats:
    users: int
    requests: int
    requests_by_status: dict[str, int]
    captions: int
    ratings: int
    average_rating: float | None
    corrections: int
    average_latency_ms: float | None
    promoted_model: str | None


async def user_stats(session: AsyncSession, *, user_id: int) -> UserStats:
    """What a user has asked for and given (for a /stats command)."""
    requests = await session.scalar(
        select(func.count()).select_from(CaptionRequest).where(CaptionRequest.requester_id == user_id)
    )
    captions = await session.scalar(
        select(func.count())
        .select_from(Caption)
        .join(CaptionRequest, Caption.request_id == CaptionRequest.id)
        .where(CaptionRequest.requester_id == user_id)
    )
    fb = (
        await session.execute(
            select(func.count(Feedback.rating), func.avg(Feedback.rating), func.count(Feedback.correction)).where(
                Feedback.user_id == user_id
            )
        )
    ).one()
    return UserStats(
        requests=requests or 0,
        captions=captions or 0,
        ratings_given=fb[0],
        average_rating_given=None if fb[1] is None else float(fb[1]),
        corrections_given=fb[2],
    )


async def global_stats(session: AsyncSession) -> GlobalStats:
    """Totals over everything (for an admin /stats and the metrics endpoint)."""
    users = await session.scalar(select(func.count()).select_from(User))
    by_status = {
        str(status): count
        for status, count in await session.execute(
            select(CaptionRequest.status, func.count()).group_by(CaptionRequest.status)
        )
    }
    captions, latency = (await session.execute(select(func.count(Caption.id), func.avg(Caption.latency_ms)))).one()
    ratings, avg_rating, corrections = (
        await session.execute(
            select(func.count(Feedback.rating), func.avg(Feedback.rating), func.count(Feedback.correction))
        )
    ).one()
    promoted = await current_model_version(session)
    return GlobalStats(
        users=users or 0,
        requests=sum(by_status.values()),
        requests_by_status=by_status,
        captions=captions,
        ratings=ratings,
        average_rating=None if avg_rating is None else float(avg_rating),
        corrections=corrections,
        average_latency_ms=None if latency is None else float(latency),
        promoted_model=promoted.name if promoted else None,
    )


# --- forgetting a user -------------------------------------------------------------------------

# Photo files to delete once the transaction that removed their rows commits (see forget_user).
_FILES_AFTER_COMMIT = "captionbot.files_after_commit"


@event.listens_for(Session, "after_commit")
def _delete_files_after_commit(session: Session) -> None:
    for store, digest in session.info.pop(_FILES_AFTER_COMMIT, ()):
        try:
            store.delete(digest)
        except OSError:  # the rows are gone either way; a leftover file is only disk space
            log.warning("could not delete photo %s from %r", digest, store, exc_info=True)


@event.listens_for(Session, "after_rollback")
def _keep_files_after_rollback(session: Session) -> None:
    session.info.pop(_FILES_AFTER_COMMIT, None)


def _delete_after_commit(session: AsyncSession, store: ImageStore, digests: Iterable[str]) -> None:
    session.sync_session.info.setdefault(_FILES_AFTER_COMMIT, []).extend((store, d) for d in digests)


@dataclass(frozen=True, slots=True)
class ForgetReport:
    """What :func:`forget_user` removed."""

    requests: int = 0
    captions: int = 0
    feedback: int = 0
    images: int = 0
    #: Photo files deleted from the store when the transaction commits (nothing on rollback).
    image_files: list[str] = field(default_factory=list)
    #: False when the user row was kept, stripped down, to remember a training opt-out.
    user_deleted: bool = False


async def forget_user(session: AsyncSession, *, user_id: int, image_store: ImageStore) -> ForgetReport:
    """Delete everything stored about a user ("forget me").

    Removes their requests, the captions of those requests with all feedback on them (other
    people's ratings of this user's photos included), the feedback they gave on other captions,
    and their photos, rows and files, unless another user's request still uses the same photo.
    Files are deleted only after the transaction commits, so a rollback loses nothing.

    The user row goes too, except when the user had opted out of training: then it stays with the
    display name cleared, so the opt-out still holds if they come back. Chats are not touched
    (they belong to everyone in them).
    """
    user = await session.get(User, user_id)
    if user is None:
        return ForgetReport()
    own_requests = select(CaptionRequest.id).where(CaptionRequest.requester_id == user_id)
    own_captions = select(Caption.id).where(Caption.request_id.in_(own_requests))
    # Photos only this user's requests use (computed before their requests are deleted).
    others_use = exists().where(CaptionRequest.image_id == Image.id, CaptionRequest.requester_id != user_id)
    orphans = (
        await session.execute(
            select(Image.id, Image.sha256).where(
                Image.id.in_(select(CaptionRequest.image_id).where(CaptionRequest.requester_id == user_id)),
                ~others_use,
            )
        )
    ).all()

    feedback = await session.execute(
        delete(Feedback).where(or_(Feedback.user_id == user_id, Feedback.caption_id.in_(own_captions))),
        execution_options=_FETCH,
    )
    captions = await session.execute(
        delete(Caption).where(Caption.request_id.in_(own_requests)), execution_options=_FETCH
    )
    requests = await session.execute(
        delete(CaptionRequest).where(CaptionRequest.requester_id == user_id), execution_options=_FETCH
    )
    image_ids = [row.id for row in orphans]
    for chunk in _chunks(image_ids):
        await session.execute(delete(Image).where(Image.id.in_(chunk)), execution_options=_FETCH)

    if user.training_opt_out:
        user.display_name = None
        user_deleted = False
    else:
        await session.delete(user)
        user_deleted = True
    await session.flush()

    digests = [row.sha256 for row in orphans]
    _delete_after_commit(session, image_store, digests)
    return ForgetReport(
        requests=requests.rowcount,
        captions=captions.rowcount,
        feedback=feedback.rowcount,
        images=len(image_ids),
        image_files=digests,
        user_deleted=user_deleted,
    )


# --- retention ---------------------------------------------------------------------------------


async def purge_expired_images(
    session: AsyncSession, *, older_than: datetime, image_store: ImageStore, keep_for_training: bool = True
) -> list[str]:
    """Delete photo files whose requests are all delivered and older than ``older_than``.

    The image rows stay (captions and feedback refer to them) with ``purged_at`` set. With
    ``keep_for_training``, photos that have training-usable feedback are kept. Files go after
    commit. Returns the digests purged.
    """
    still_needed = exists().where(
        CaptionRequest.image_id == Image.id,
        or_(CaptionRequest.created_at >= older_than, CaptionRequest.status != RequestStatus.DELIVERED),
    )
    stmt = select(Image.id, Image.sha256).where(Image.purged_at.is_(None), Image.created_at < older_than, ~still_needed)
    if keep_for_training:
        # Only feedback that training_examples would use keeps a photo: a thumbs-down alone doesn't.
        trainable = _usable_feedback(Feedback.id, min_rating=1).where(CaptionRequest.image_id == Image.id).exists()
        stmt = stmt.where(~trainable)
    rows = (await session.execute(stmt)).all()
    now = utcnow()
    for chunk in _chunks([row.id for row in rows]):
        await session.execute(
            update(Image).where(Image.id.in_(chunk)).values(purged_at=now),
            execution_options={"synchronize_session": False},
        )
    digests = [row.sha256 for row in rows]
    _delete_after_commit(session, image_store, digests)
    return digests


# --- training data -----------------------------------------------------------------------------


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


def _usable_feedback(*columns: Any, min_rating: int | None) -> Select:
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
        _usable_feedback(func.count(func.distinct(Image.id)), min_rating=min_rating)
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
        _usable_feedback(
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


# --- model versions ----------------------------------------------------------------------------


async def register_model_version(
    session: AsyncSession,
    *,
    name: str,
    path: str,
    sha256: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> ModelVersion:
    """Record a trained checkpoint as a ``candidate``; registering the same name again updates it.

    Raises ValueError if ``name`` is already registered for a different checkpoint (sha256).
    """
    existing = await session.scalar(select(ModelVersion).where(ModelVersion.name == name))
    if existing is None:
        version = ModelVersion(name=name, path=str(path), sha256=sha256, metrics=dict(metrics or {}))
        session.add(version)
        await session.flush()
        return version
    if sha256 and existing.sha256 and sha256 != existing.sha256:
        raise ValueError(f"model version {name!r} is already registered with another checkpoint")
    existing.path = str(path)
    existing.sha256 = sha256 or existing.sha256
    if metrics is not None:
        existing.metrics = dict(metrics)
    await session.flush()
    return existing


async def promote_model_version(session: AsyncSession, *, model_version_id: int) -> ModelVersion:
    """Make this version the one workers load; the previously promoted one becomes ``retired``.

    A partial unique index guarantees at most one promoted version even under concurrent promotions
    (the loser gets an IntegrityError). Raises LookupError for an unknown id.
    """
    version = await session.get(ModelVersion, model_version_id)
    if version is None:
        raise LookupError(f"no model version with id {model_version_id}")
    if version.status == ModelStatus.PROMOTED:
        return version
    # Retire first: the unique index must never see two promoted rows.
    await session.execute(
        update(ModelVersion)
        .where(ModelVersion.status == ModelStatus.PROMOTED, ModelVersion.id != model_version_id)
        .values(status=ModelStatus.RETIRED),
        execution_options=_FETCH,
    )
    version.status = ModelStatus.PROMOTED
    version.promoted_at = utcnow()
    await session.flush()
    return version


async def current_model_version(session: AsyncSession) -> ModelVersion | None:
    """The promoted model version, or None (workers then use the shipped default checkpoint)."""
    return await session.scalar(select(ModelVersion).where(ModelVersion.status == ModelStatus.PROMOTED))


async def get_model_version(session: AsyncSession, *, name: str) -> ModelVersion | None:
    return await session.scalar(select(ModelVersion).where(ModelVersion.name == name))


__all__ = [
    "UNSET",
    "ForgetReport",
    "GlobalStats",
    "TrainingExample",
    "UserStats",
    "add_image",
    "DEFAULT_DELIVERY_ATTEMPTS",
    "DEFAULT_DELIVERY_LEASE",
    "caption_for_request",
    "claim_delivery",
    "claim_request",
    "complete_request",
    "count_pending",
    "count_pending_for_user",
    "create_request",
    "current_model_version",
    "fail_request",
    "forget_user",
    "get_feedback",
    "get_model_version",
    "get_or_create_chat",
    "get_or_create_user",
    "get_request",
    "get_request_by_public_id",
    "get_user",
    "global_stats",
    "mark_delivered",
    "promote_model_version",
    "purge_expired_images",
    "release_delivery",
    "queue_position",
    "register_model_version",
    "requeue_stale_requests",
    "set_chat_autocaption",
    "set_feedback",
    "set_status_message",
    "set_training_opt_out",
    "stale_requests",
    "training_examples",
    "undelivered_results",
    "user_stats",
]
