"""The moderator's page: corrections to judge, reported captions, who gives feedback, and the model
versions with what people made of them (rating over time), with promote and roll back.

Built on :class:`~captionbot.service.learning.LearningService` (reviews, rollback, usage figures),
so the page and the command line judge and switch models the same way.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from captionbot.service.learning import LearningService, _ref
from captionbot.service.learning_results import ModelRef, normalised_rating
from captionbot.storage import model_versions, moderation


@dataclass(frozen=True, slots=True)
class FlaggedCaption:
    caption_id: int
    text: str
    platform: str
    image_sha256: str
    flags: int  # how many people reported it
    last_flagged_at: datetime


@dataclass(frozen=True, slots=True)
class PersonActivity:
    """One person's feedback, by user number (no names on the page)."""

    person: int
    platform: str
    ratings: int
    corrections: int
    approved: int
    rejected: int
    flags: int
    opted_out: bool
    last_at: datetime


@dataclass(frozen=True, slots=True)
class VersionOverview:
    """A model version with its metrics and what people made of it (mean rating on -1..+1)."""

    name: str
    status: str
    promoted_at: datetime | None
    metrics: dict[str, Any]
    captions: int
    rated: int
    mean_rating: float | None
    corrections: int
    round_number: int | None
    round_decision: str | None


@dataclass(frozen=True, slots=True)
class RatingPoint:
    """Mean rating (-1..+1) of one version's captions, rated on one day (UTC)."""

    version: str
    day: date
    ratings: int
    mean: float


class PromoteError(ValueError):
    """A version can't be promoted; ``str(error)`` says why in one line."""


class ModerationService(LearningService):
    """``ModerationService(settings, session_factory, image_store)``."""

    async def flagged(self, *, limit: int = 100) -> list[FlaggedCaption]:
        async with self.session_factory() as session:
            rows = await moderation.flagged_captions(session, limit=limit)
        return [
            FlaggedCaption(r.caption_id, r.text, str(r.platform), r.image_sha256, r.flags, r.last_flagged_at)
            for r in rows
        ]

    async def clear_flags(self, caption_ids: list[int]) -> int:
        """The moderator dealt with these reports; returns how many were cleared."""
        async with self.session_factory.begin() as session:
            return await moderation.clear_flags(session, caption_ids=caption_ids)

    async def people(self, *, limit: int = 100) -> list[PersonActivity]:
        async with self.session_factory() as session:
            rows = await moderation.people_feedback(session, limit=limit)
        return [
            PersonActivity(
                r.user_id,
                str(r.platform),
                r.ratings,
                r.corrections,
                r.approved,
                r.rejected,
                r.flags,
                r.training_opt_out,
                r.last_at,
            )
            for r in rows
        ]

    async def photo(self, image_sha256: str) -> bytes | None:
        """A stored photo a moderator is judging (a correction's or a reported caption's), if kept."""
        if not self.image_store.exists(image_sha256):
            return None
        try:
            return await self.image_store.aread(image_sha256)
        except FileNotFoundError:
            return None

    async def versions(self) -> list[VersionOverview]:
        """Every model version, oldest first, with metrics, usage and the round that made it."""
        rows = await self.model_versions()
        usage = {u.name: u for u in await self.model_report()}
        out = []
        for row in rows:
            u = usage.get(row.name)
            out.append(
                VersionOverview(
                    row.name,
                    row.status,
                    row.promoted_at,
                    row.metrics,
                    u.captions if u else 0,
                    u.rated if u else 0,
                    u.mean_rating if u else None,
                    u.corrections if u else 0,
                    row.round_number,
                    row.round_decision,
                )
            )
        return out

    async def rating_over_time(self, *, days: int = 30) -> list[RatingPoint]:
        """Each version's mean rating per day over the last ``days`` days, oldest first."""
        since = self.now() - timedelta(days=days)
        async with self.session_factory() as session:
            rows = await moderation.ratings_per_day(session, since=since)
        count: dict[tuple[str, date], int] = defaultdict(int)
        total: dict[tuple[str, date], float] = defaultdict(float)
        for version, day, rating, n in rows:
            count[version, day] += n
            total[version, day] += normalised_rating(rating) * n
        return [
            RatingPoint(v, d, count[v, d], total[v, d] / count[v, d])
            for v, d in sorted(count, key=lambda k: (k[1], k[0]))
        ]

    async def promote(self, name: str) -> ModelRef:
        """Promote a registered version by name: workers switch to it at their next check. Refused
        (:class:`PromoteError`) when unknown, or when its checkpoint is gone or changed since it was
        registered."""
        async with self.session_factory() as session:
            version = await model_versions.get_model_version(session, name=name)
        if version is None:
            raise PromoteError(f"there is no model version called {name!r}")
        sha = await asyncio.to_thread(model_versions.checkpoint_sha256, version.path)
        if sha is None:
            raise PromoteError(f"{name}: its checkpoint file is missing")
        if version.sha256 and sha != version.sha256:
            raise PromoteError(f"{name}: its checkpoint changed since it was registered; register it again")
        async with self.session_factory.begin() as session:
            promoted = await model_versions.promote_model_version(session, model_version_id=version.id)
            return _ref(promoted)


__all__ = ["FlaggedCaption", "ModerationService", "PersonActivity", "PromoteError", "RatingPoint", "VersionOverview"]
