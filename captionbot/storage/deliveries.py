"""Replies: which results wait to be sent, and the claim -> send -> mark-delivered protocol.

Each step is its own short transaction and a single conditional ``UPDATE``, so a live delivery, a
start-up resend and a periodic sweep (or two bot processes) never send the same reply at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from captionbot.storage.models import (
    UNDELIVERED_STATUSES,
    Caption,
    CaptionRequest,
    ModelVersion,
    Platform,
    RequestStatus,
    User,
    utcnow,
)
from captionbot.storage.statements import FETCH

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
        execution_options=FETCH,
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
        execution_options=FETCH,
    )
    return result.first() is not None


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
