"""Learning rounds (the one-at-a-time lease and each round's outcome), the feedback a round learns
from, corrections' reviews, and per-model-version usage figures.

Every write that races another machine is a conditional UPDATE on ``status = 'running'`` or an
INSERT guarded by the partial unique index, so the database decides who holds the lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from captionbot.storage.captions import usable_feedback
from captionbot.storage.learning_models import LearningRound, RoundStatus
from captionbot.storage.models import Caption, CaptionRequest, Feedback, Image, ModelStatus, ModelVersion
from captionbot.storage.statements import chunks, rows_changed

REVIEWS = ("approved", "rejected")


async def running_round(session: AsyncSession) -> LearningRound | None:
    return await session.scalar(select(LearningRound).where(LearningRound.status == RoundStatus.RUNNING))


async def get_round(session: AsyncSession, *, round_id: int) -> LearningRound | None:
    return await session.get(LearningRound, round_id, populate_existing=True)


async def abandon_round(
    session: AsyncSession, *, round_id: int, heartbeat_at: datetime, decision: str, now: datetime
) -> bool:
    """Mark a silent round abandoned, unless it finished or sent a heartbeat meanwhile."""
    changed = await rows_changed(
        session,
        update(LearningRound)
        .where(
            LearningRound.id == round_id,
            LearningRound.status == RoundStatus.RUNNING,
            LearningRound.heartbeat_at == heartbeat_at,
        )
        .values(status=RoundStatus.ABANDONED, decision=decision, finished_at=now),
    )
    return changed == 1


async def start_round(
    session: AsyncSession, *, holder: str, now: datetime, base_model_version_id: int | None
) -> LearningRound:
    """Insert the next round as ``running``; IntegrityError (at flush) when another round runs."""
    number = int(await session.scalar(select(func.coalesce(func.max(LearningRound.number), 0))) or 0) + 1
    row = LearningRound(
        number=number,
        status=RoundStatus.RUNNING,
        holder=holder[:128],
        started_at=now,
        heartbeat_at=now,
        collected_at=now,
        base_model_version_id=base_model_version_id,
        inputs={},
        counts={},
        metrics={},
        decision="",
    )
    session.add(row)
    await session.flush()
    return row


async def touch_round(session: AsyncSession, *, round_id: int, now: datetime) -> bool:
    """Renew the lease; False when the round is no longer running (it was taken over or ended)."""
    stmt = (
        update(LearningRound)
        .where(LearningRound.id == round_id, LearningRound.status == RoundStatus.RUNNING)
        .values(heartbeat_at=now)
    )
    return await rows_changed(session, stmt) == 1


async def set_round_inputs(session: AsyncSession, *, round_id: int, inputs: dict[str, Any]) -> bool:
    """Replace a running round's inputs; False when it is no longer running."""
    stmt = (
        update(LearningRound)
        .where(LearningRound.id == round_id, LearningRound.status == RoundStatus.RUNNING)
        .values(inputs=inputs)
    )
    return await rows_changed(session, stmt) == 1


async def end_round(
    session: AsyncSession,
    *,
    round_id: int,
    status: RoundStatus,
    now: datetime,
    decision: str,
    counts: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> bool:
    """Close a running round; False (nothing changed) when it is not running any more."""
    values: dict[str, Any] = {"status": status, "finished_at": now, "decision": decision}
    if counts is not None:
        values["counts"] = counts
    if metrics is not None:
        values["metrics"] = metrics
    stmt = (
        update(LearningRound)
        .where(LearningRound.id == round_id, LearningRound.status == RoundStatus.RUNNING)
        .values(**values)
    )
    return await rows_changed(session, stmt) == 1


async def set_round_candidate(session: AsyncSession, *, round_id: int, model_version_id: int) -> None:
    await session.execute(
        update(LearningRound).where(LearningRound.id == round_id).values(candidate_model_version_id=model_version_id),
        execution_options={"synchronize_session": "fetch"},
    )


async def fixed_photos(session: AsyncSession) -> list[str]:
    """The feedback fixed set recorded by the first round that recorded one ([] if none did)."""
    for inputs in await session.scalars(select(LearningRound.inputs).order_by(LearningRound.number)):
        shas = (inputs or {}).get("fixed_photos")
        if shas:
            return [str(s) for s in shas]
    return []


async def last_promoted_collected_at(session: AsyncSession) -> datetime | None:
    """When the feedback of the latest promoting round was collected (older feedback is not new)."""
    return await session.scalar(
        select(LearningRound.collected_at)
        .where(LearningRound.status == RoundStatus.PROMOTED)
        .order_by(LearningRound.number.desc())
        .limit(1)
    )


async def round_rows(
    session: AsyncSession, *, limit: int | None = None
) -> list[tuple[LearningRound, str | None, str | None]]:
    """Rounds newest first, each with its base and candidate version names."""
    base, cand = aliased(ModelVersion), aliased(ModelVersion)
    stmt = (
        select(LearningRound, base.name.label("base_name"), cand.name.label("candidate_name"))
        .outerjoin(base, LearningRound.base_model_version_id == base.id)
        .outerjoin(cand, LearningRound.candidate_model_version_id == cand.id)
        .order_by(LearningRound.number.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [(row, base_name, candidate_name) for row, base_name, candidate_name in await session.execute(stmt)]


async def feedback_rows(session: AsyncSession) -> list[Any]:
    """Feedback training may use (see captions.usable_feedback; any rating), photos not purged, by id.

    The caller still checks the file is in the image store.
    """
    stmt = (
        usable_feedback(
            Feedback.id,
            Feedback.user_id,
            Image.sha256,
            Caption.id.label("caption_id"),
            Caption.text,
            ModelVersion.name.label("model_version"),
            Feedback.rating,
            Feedback.correction,
            Feedback.review,
            Feedback.updated_at,
            min_rating=None,
        )
        .join(Image, CaptionRequest.image_id == Image.id)
        .outerjoin(ModelVersion, Caption.model_version_id == ModelVersion.id)
        .where(Image.purged_at.is_(None))
        .order_by(Feedback.id)
    )
    return list((await session.execute(stmt)).all())


async def set_review(session: AsyncSession, *, feedback_ids: Sequence[int], review: str) -> int:
    """Record a verdict on corrections (rows without a correction are left alone); rows changed."""
    if review not in REVIEWS:
        raise ValueError(f"review must be one of {REVIEWS}, not {review!r}")
    changed = 0
    for chunk in chunks(sorted(set(feedback_ids))):
        changed += await rows_changed(
            session,
            update(Feedback)
            .where(Feedback.id.in_(chunk), Feedback.correction.is_not(None))
            # Keep updated_at: a verdict is not new feedback.
            .values(review=review, updated_at=Feedback.updated_at),
        )
    return changed


async def rollback_target(session: AsyncSession, *, before: datetime) -> ModelVersion | None:
    """The retired version promoted most recently before ``before``."""
    return await session.scalar(
        select(ModelVersion)
        .where(ModelVersion.status == ModelStatus.RETIRED, ModelVersion.promoted_at < before)
        .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc())
        .limit(1)
    )


async def all_model_versions(session: AsyncSession) -> list[ModelVersion]:
    """Oldest first."""
    return list(await session.scalars(select(ModelVersion).order_by(ModelVersion.created_at, ModelVersion.id)))


async def captions_per_version(session: AsyncSession) -> dict[int, int]:
    stmt = (
        select(Caption.model_version_id, func.count())
        .where(Caption.model_version_id.is_not(None))
        .group_by(Caption.model_version_id)
    )
    return {int(vid or 0): int(n) for vid, n in (await session.execute(stmt)).all()}


async def feedback_per_version(session: AsyncSession) -> list[tuple[int, int | None, int, int]]:
    """(model_version_id, rating, rows, corrections) for every rating value each version got."""
    stmt = (
        select(Caption.model_version_id, Feedback.rating, func.count(), func.count(Feedback.correction))
        .join(Caption, Feedback.caption_id == Caption.id)
        .where(Caption.model_version_id.is_not(None))
        .group_by(Caption.model_version_id, Feedback.rating)
    )
    return [(int(vid or 0), rating, int(n), int(c)) for vid, rating, n, c in await session.execute(stmt)]


async def rounds_by_candidate(session: AsyncSession) -> dict[int, LearningRound]:
    """The latest round that produced each model version."""
    stmt = (
        select(LearningRound)
        .where(LearningRound.candidate_model_version_id.is_not(None))
        .order_by(LearningRound.number)
    )
    return {r.candidate_model_version_id: r for r in await session.scalars(stmt) if r.candidate_model_version_id}
