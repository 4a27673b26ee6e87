"""Corrections in progress: who pressed "Better caption" where, for which caption, until when.

One row per person and chat (a second press replaces the first). Like every storage module: an
``AsyncSession`` first, keyword-only arguments, no commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from captionbot.storage.models import PendingCorrection, Platform, User
from captionbot.storage.statements import dialect_insert


async def get_pending(
    session: AsyncSession, *, platform: Platform | str, platform_chat_id: str | int, platform_user_id: str | int
) -> PendingCorrection | None:
    """This person's correction in progress in this chat (expired or not)."""
    return await session.scalar(
        select(PendingCorrection)
        .join(User, PendingCorrection.user_id == User.id)
        .where(
            PendingCorrection.platform == Platform(platform),
            PendingCorrection.platform_chat_id == str(platform_chat_id),
            User.platform == Platform(platform),
            User.platform_user_id == str(platform_user_id),
        )
    )


async def start_pending(
    session: AsyncSession,
    *,
    platform: Platform | str,
    platform_chat_id: str | int,
    user_id: int,
    caption_id: int,
    now: datetime,
    expires_at: datetime,
    posting_for: timedelta = timedelta(seconds=30),
) -> PendingCorrection | None:
    """Begin (or restart) waiting for this person's correction of ``caption_id`` in this chat.

    None when a wait for the same caption began less than ``posting_for`` ago and is still open: that
    press is posting its prompt (a double tap), so this one must not post another. One statement,
    so two presses at the same moment cannot both win."""
    values = {
        "platform": Platform(platform),
        "platform_chat_id": str(platform_chat_id),
        "user_id": user_id,
        "caption_id": caption_id,
        "prompt_message_id": None,
        "created_at": now,
        "expires_at": expires_at,
    }
    stmt = (
        dialect_insert(session, PendingCorrection)
        .values(**values)
        .on_conflict_do_update(
            index_elements=["platform", "platform_chat_id", "user_id"],
            set_={k: values[k] for k in ("caption_id", "prompt_message_id", "created_at", "expires_at")},
            where=~(
                (PendingCorrection.caption_id == caption_id)
                & (PendingCorrection.expires_at > now)
                & (PendingCorrection.created_at > now - posting_for)
            ),
        )
        .returning(PendingCorrection)
    )
    row: PendingCorrection | None = (
        await session.scalars(stmt, execution_options={"populate_existing": True})
    ).one_or_none()
    return row


async def end_pending(session: AsyncSession, *, pending_id: int) -> bool:
    """Stop waiting (taken, cancelled or expired); True if there was something to stop."""
    gone = await session.execute(
        delete(PendingCorrection).where(PendingCorrection.id == pending_id).returning(PendingCorrection.id)
    )
    return gone.first() is not None
