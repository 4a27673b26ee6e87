"""Users, chats and privacy: who someone is, their settings, their counts, and forgetting them.

Like every storage module: an ``AsyncSession`` first, keyword-only arguments, no commits (the
caller owns the transaction). Get-or-create is ``INSERT ... ON CONFLICT``, so racing processes
never create a user or chat twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from captionbot.storage.imagestore import ImageStore
from captionbot.storage.models import (
    PENDING_STATUSES,
    Caption,
    CaptionRequest,
    Chat,
    ChatKind,
    Feedback,
    Image,
    Platform,
    RequestStatus,
    User,
)
from captionbot.storage.retention import delete_files_after_commit
from captionbot.storage.statements import FETCH, chunks, dialect_insert, rows_changed


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
        dialect_insert(session, User)
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
        dialect_insert(session, Chat)
        .values(platform=platform, platform_chat_id=key, kind=ChatKind(kind), autocaption=False)
        .on_conflict_do_nothing(index_elements=["platform", "platform_chat_id"])
    )
    return (await session.scalars(select(Chat).where(Chat.platform == platform, Chat.platform_chat_id == key))).one()


async def set_chat_autocaption(session: AsyncSession, *, chat_id: int, enabled: bool) -> None:
    """Turn captioning of every photo posted in a chat on or off."""
    await session.execute(update(Chat).where(Chat.id == chat_id).values(autocaption=enabled))


@dataclass(frozen=True, slots=True)
class ForgetReport:
    """What :func:`forget_user` removed."""

    found: bool = True  # False: nothing was stored about this user
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
        return ForgetReport(found=False)
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

    feedback = await rows_changed(
        session, delete(Feedback).where(or_(Feedback.user_id == user_id, Feedback.caption_id.in_(own_captions)))
    )
    captions = await rows_changed(session, delete(Caption).where(Caption.request_id.in_(own_requests)))
    requests = await rows_changed(session, delete(CaptionRequest).where(CaptionRequest.requester_id == user_id))
    image_ids = [row.id for row in orphans]
    for chunk in chunks(image_ids):
        await session.execute(delete(Image).where(Image.id.in_(chunk)), execution_options=FETCH)

    if user.training_opt_out:
        user.display_name = None
        user_deleted = False
    else:
        await session.delete(user)
        user_deleted = True
    await session.flush()

    digests = [row.sha256 for row in orphans]
    delete_files_after_commit(session, image_store, digests)
    return ForgetReport(
        requests=requests,
        captions=captions,
        feedback=feedback,
        images=len(image_ids),
        image_files=digests,
        user_deleted=user_deleted,
    )


@dataclass(frozen=True, slots=True)
class UserStats:
    """What a person has asked for and given (their /stats)."""

    requests: int = 0
    captions: int = 0
    pending: int = 0  # waiting for (or getting) a caption
    failed: int = 0  # finished without a caption
    ratings: int = 0
    corrections: int = 0
    opted_out: bool = False


async def delete_chat(session: AsyncSession, *, platform: Platform | str, platform_chat_id: str | int) -> bool:
    """Delete a chat row (the web page's one-visitor chats go when their visitor is forgotten)."""
    deleted = await rows_changed(
        session,
        delete(Chat).where(Chat.platform == Platform(platform), Chat.platform_chat_id == str(platform_chat_id)),
    )
    return deleted > 0


async def user_stats(session: AsyncSession, *, user_id: int) -> UserStats:
    """Counts for one user; all zero for an unknown id."""
    user = await session.get(User, user_id)
    if user is None:
        return UserStats()
    mine = CaptionRequest.requester_id == user_id
    requests, pending = (
        await session.execute(
            select(func.count(), func.count().filter(CaptionRequest.status.in_(PENDING_STATUSES))).where(mine)
        )
    ).one()
    captions = await session.scalar(
        select(func.count())
        .select_from(Caption)
        .join(CaptionRequest, Caption.request_id == CaptionRequest.id)
        .where(mine)
    )
    failed = await session.scalar(
        select(func.count())
        .select_from(CaptionRequest)
        .where(
            mine,
            CaptionRequest.status.in_([RequestStatus.FAILED, RequestStatus.DELIVERED]),
            CaptionRequest.id.not_in(select(Caption.request_id)),
        )
    )
    ratings, corrections = (
        await session.execute(
            select(func.count(Feedback.rating), func.count(Feedback.correction)).where(Feedback.user_id == user_id)
        )
    ).one()
    return UserStats(
        requests=int(requests),
        captions=int(captions or 0),
        pending=int(pending),
        failed=int(failed or 0),
        ratings=int(ratings),
        corrections=int(corrections),
        opted_out=user.training_opt_out,
    )


async def chat_autocaption(session: AsyncSession, *, platform: Platform | str, platform_chat_id: str | int) -> bool:
    """Whether an admin turned on captioning of every photo in this chat (False for an unknown chat)."""
    enabled = await session.scalar(
        select(Chat.autocaption).where(
            Chat.platform == Platform(platform), Chat.platform_chat_id == str(platform_chat_id)
        )
    )
    return bool(enabled)
