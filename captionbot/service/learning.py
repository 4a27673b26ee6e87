"""LearningService: what the learner and the CLI call to run learning rounds on people's feedback.

Separate from :class:`~captionbot.service.CaptionService` (no queues, no front ends), and the only
way training reaches the database: rounds (a lease one machine holds at a time), usable feedback,
model versions (finish, rollback, report) and the review of corrections. No torch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot.service.learning_results import (
    CandidateModel,
    FeedbackItem,
    LeaseLostError,
    ModelRef,
    ModelUsage,
    NothingToRollBackError,
    ReviewItem,
    RoundBusyError,
    RoundLease,
    RoundRecord,
    VersionRow,
    normalised_rating,
)
from captionbot.settings import Settings
from captionbot.storage import learning, model_versions
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.learning_models import LearningRound, RoundStatus
from captionbot.storage.models import ModelStatus, ModelVersion, utcnow


def _ref(version: ModelVersion) -> ModelRef:
    return ModelRef(version.id, version.name, version.path)


def _record(row: LearningRound, base: str | None, candidate: str | None) -> RoundRecord:
    return RoundRecord(
        id=row.id,
        number=row.number,
        status=str(row.status),
        holder=row.holder,
        started_at=row.started_at,
        finished_at=row.finished_at,
        base_model=base,
        candidate=candidate,
        counts=dict(row.counts or {}),
        metrics=dict(row.metrics or {}),
        decision=row.decision or "",
    )


class LearningService:
    """Rounds, feedback and model versions for the learner; ``now`` (aware UTC) is injectable for tests."""

    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        image_store: ImageStore,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.image_store = image_store
        self.now = now

    # -- the lease -----------------------------------------------------------------------------------

    async def begin_round(self, *, holder: str) -> RoundLease:
        """Start the next round, taking over one silent for ``settings.learn_lease_s``.

        Raises RoundBusyError while another round is alive; of two concurrent calls one wins.
        """
        now = self.now()
        stale_before = now - timedelta(seconds=self.settings.learn_lease_s)
        try:
            async with self.session_factory.begin() as session:
                running = await learning.running_round(session)
                if running is not None and running.heartbeat_at < stale_before:
                    decision = f"abandoned: no heartbeat since {running.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
                    if await learning.abandon_round(
                        session, round_id=running.id, heartbeat_at=running.heartbeat_at, decision=decision, now=now
                    ):
                        running = None
                    else:
                        running = await learning.running_round(session)
                if running is not None:
                    raise RoundBusyError(running.holder, running.started_at)
                base = await model_versions.current_model_version(session)
                row = await learning.start_round(
                    session, holder=holder, now=now, base_model_version_id=base.id if base else None
                )
                fixed = await learning.fixed_photos(session)
                return RoundLease(
                    row.id, row.number, row.started_at, row.collected_at, _ref(base) if base else None, fixed
                )
        except IntegrityError:
            # Another machine started a round between our check and our insert.
            async with self.session_factory() as session:
                winner = await learning.running_round(session)
            if winner is None:
                raise RoundBusyError("another learner", now) from None
            raise RoundBusyError(winner.holder, winner.started_at) from None

    async def heartbeat(self, round_id: int) -> None:
        async with self.session_factory.begin() as session:
            if not await learning.touch_round(session, round_id=round_id, now=self.now()):
                raise LeaseLostError(f"learning round {round_id} is no longer running")

    async def record_fixed_photos(self, round_id: int, shas: list[str]) -> None:
        """Remember the fixed set this round picked, so every later round scores on the same photos."""
        async with self.session_factory.begin() as session:
            row = await learning.get_round(session, round_id=round_id)
            if row is None or row.status != RoundStatus.RUNNING:
                raise LeaseLostError(f"learning round {round_id} is no longer running")
            await learning.set_round_inputs(
                session, round_id=round_id, inputs={**row.inputs, "fixed_photos": list(shas)}
            )

    async def finish_round(
        self,
        round_id: int,
        *,
        counts: dict[str, object],
        metrics: dict[str, object],
        decision: str,
        candidate: CandidateModel | None,
        promote: bool,
    ) -> RoundRecord:
        """Register (and when ``promote``, promote) the candidate and close the round, in one transaction.

        Raises LeaseLostError, changing nothing, when the round is not running any more.
        """
        if promote and candidate is None:
            raise ValueError("promote=True needs a candidate")
        status = RoundStatus.PROMOTED if promote else RoundStatus.REJECTED
        async with self.session_factory.begin() as session:
            # First, so a takeover racing us either waits for this transaction or makes it fail.
            if not await learning.end_round(
                session,
                round_id=round_id,
                status=status,
                now=self.now(),
                decision=decision,
                counts=dict(counts),
                metrics=dict(metrics),
            ):
                raise LeaseLostError(f"learning round {round_id} is no longer running")
            if candidate is not None:
                version = await model_versions.register_model_version(
                    session,
                    name=candidate.name,
                    path=candidate.path,
                    sha256=candidate.sha256,
                    metrics=candidate.metrics,
                )
                if promote:
                    await model_versions.promote_model_version(session, model_version_id=version.id)
                await learning.set_round_candidate(session, round_id=round_id, model_version_id=version.id)
        record = await self._round(round_id)
        assert record is not None
        return record

    async def fail_round(self, round_id: int, *, reason: str) -> None:
        """Close the round as failed; a round that already ended (or was taken over) is left alone."""
        async with self.session_factory.begin() as session:
            await learning.end_round(
                session, round_id=round_id, status=RoundStatus.FAILED, now=self.now(), decision=reason
            )

    # -- rounds --------------------------------------------------------------------------------------

    async def _round(self, round_id: int) -> RoundRecord | None:
        return next((r for r in await self.rounds() if r.id == round_id), None)

    async def last_round(self) -> RoundRecord | None:
        found = await self.rounds(limit=1)
        return found[0] if found else None

    async def rounds(self, limit: int | None = None) -> list[RoundRecord]:
        """Newest first."""
        async with self.session_factory() as session:
            rows = await learning.round_rows(session, limit=limit)
        return [_record(row, base, candidate) for row, base, candidate in rows]

    # -- feedback ------------------------------------------------------------------------------------

    async def usable_feedback(self) -> list[FeedbackItem]:
        """Ratings and corrections training may use (nobody opted out, photo file still there), by id."""
        async with self.session_factory() as session:
            rows = await learning.feedback_rows(session)
            since = await learning.last_promoted_collected_at(session)
        store = self.image_store

        def items() -> list[FeedbackItem]:  # file checks: off the event loop
            return [
                FeedbackItem(
                    feedback_id=row.id,
                    person=row.user_id,
                    image_sha256=row.sha256,
                    image_path=str(store.path(row.sha256).resolve()),
                    caption_id=row.caption_id,
                    caption_text=row.text,
                    model_version=row.model_version,
                    rating=row.rating,
                    correction=row.correction,
                    review=row.review,
                    updated_at=row.updated_at,
                    new=since is None or row.updated_at > since,
                )
                for row in rows
                if store.exists(row.sha256)
            ]

        return await asyncio.to_thread(items)

    async def new_feedback_count(self) -> int:
        return sum(1 for item in await self.usable_feedback() if item.new)

    async def corrections_to_review(self, *, limit: int = 50) -> list[ReviewItem]:
        """Usable corrections no moderator has judged yet, oldest first."""
        waiting = [i for i in await self.usable_feedback() if i.correction and i.review is None]
        return [
            ReviewItem(i.feedback_id, i.person, i.caption_text, i.correction or "", i.image_sha256, i.updated_at)
            for i in waiting[:limit]
        ]

    async def review(self, feedback_ids: list[int], *, approve: bool) -> int:
        """Approve or reject corrections; returns the rows changed."""
        async with self.session_factory.begin() as session:
            return await learning.set_review(
                session, feedback_ids=feedback_ids, review="approved" if approve else "rejected"
            )

    # -- model versions ------------------------------------------------------------------------------

    async def promoted_model(self) -> ModelRef | None:
        async with self.session_factory() as session:
            version = await model_versions.current_model_version(session)
        return _ref(version) if version else None

    async def rollback(self) -> tuple[ModelRef, ModelRef]:
        """Promote again the version that was promoted before the current one: (from, to)."""
        async with self.session_factory.begin() as session:
            current = await model_versions.current_model_version(session)
            if current is None or current.promoted_at is None:
                raise NothingToRollBackError("no model version is promoted")
            target = await learning.rollback_target(session, before=current.promoted_at)
            if target is None:
                raise NothingToRollBackError(f"no model version was promoted before {current.name}")
            was, first_promoted = _ref(current), target.promoted_at
            await model_versions.promote_model_version(session, model_version_id=target.id)
            # The version rolled back from leaves the line of served versions (a candidate again) and
            # the target keeps its first promotion time, so a second rollback steps further back.
            current.status = ModelStatus.CANDIDATE
            target.promoted_at = first_promoted
            return was, _ref(target)

    async def model_report(self) -> list[ModelUsage]:
        """Every model version, oldest first, with what people made of its captions."""
        async with self.session_factory() as session:
            versions = await learning.all_model_versions(session)
            captions = await learning.captions_per_version(session)
            feedback = await learning.feedback_per_version(session)
        rated: dict[int, int] = {}
        total: dict[int, float] = {}
        corrected: dict[int, int] = {}
        for version_id, rating, rows, corrections in feedback:
            corrected[version_id] = corrected.get(version_id, 0) + corrections
            if rating is not None:
                rated[version_id] = rated.get(version_id, 0) + rows
                total[version_id] = total.get(version_id, 0.0) + normalised_rating(rating) * rows
        report = []
        for v in versions:
            n, r, c = captions.get(v.id, 0), rated.get(v.id, 0), corrected.get(v.id, 0)
            mean = total[v.id] / r if r else None
            report.append(ModelUsage(v.name, str(v.status), v.promoted_at, n, r, mean, c, c / n if n else None))
        return report

    async def model_versions(self) -> list[VersionRow]:
        """Oldest first, each with the round that produced it (None for ones registered by hand)."""
        async with self.session_factory() as session:
            versions = await learning.all_model_versions(session)
            made_by = await learning.rounds_by_candidate(session)
        rows = []
        for v in versions:
            r = made_by.get(v.id)
            rows.append(
                VersionRow(
                    v.name,
                    str(v.status),
                    v.promoted_at,
                    dict(v.metrics or {}),
                    v.path,
                    r.number if r else None,
                    str(r.status) if r else None,
                    r.decision if r else None,
                )
            )
        return rows
