"""``jobs.claim_job``, the claim the worker runs for each job message, and its races.

On SQLite and PostgreSQL alike: of any number of concurrent claims of one request exactly one wins,
a finished request is never claimed again, and a ``running`` request whose worker died (untouched
since ``stale_before``) is taken over exactly once. On PostgreSQL a second claim waits for the
first's uncommitted row lock and then loses.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from captionbot.jobs import ErrorCode
from captionbot.storage import deliveries, jobs
from captionbot.storage.db import create_engine, make_session_factory
from captionbot.storage.models import CaptionRequest, RequestStatus, utcnow
from tests.storage.helpers import FAR_PAST, Factory, Seeded, claim, request_row, seed
from tests.tiny_model import until

CLAIMERS = 4  # concurrent claims of each request


async def _claim_and_commit(
    factory: Factory, public_id: str, stale_before: datetime = FAR_PAST
) -> jobs.ClaimedJob | None:
    """One worker's claim, in its own transaction."""
    async with factory.begin() as s:
        return await jobs.claim_job(s, public_id=public_id, stale_before=stale_before)


async def _committed_claim(s: AsyncSession, seeded: Seeded) -> jobs.ClaimedJob | None:
    result = await claim(s, seeded)
    await s.commit()
    return result


async def _assert_running(factory: Factory, seeded: Seeded, *, attempts: int) -> CaptionRequest:
    async with factory() as s:
        req = await request_row(s, seeded.request_id)
    assert req is not None and req.status == RequestStatus.RUNNING and req.attempts == attempts
    assert req.started_at is not None
    return req


async def test_claim_job_moves_a_queued_request_to_running(session_factory: Factory) -> None:
    seeded = await seed(session_factory)
    job = await _claim_and_commit(session_factory, seeded.public_id)
    assert job is not None
    assert (job.id, job.public_id, job.image_sha256, job.attempts) == (
        seeded.request_id,
        seeded.public_id,
        seeded.sha256,
        1,
    )
    req = await _assert_running(session_factory, seeded, attempts=1)
    assert job.created_at == req.created_at and job.created_at.utcoffset() == timedelta(0)
    assert await _claim_and_commit(session_factory, "0" * 32) is None  # unknown (or forgotten) request


async def test_a_second_session_loses_once_the_first_commits(session_factory: Factory) -> None:
    seeded = await seed(session_factory)
    async with session_factory() as s1, session_factory() as s2:
        won = await claim(s1, seeded)  # uncommitted: PostgreSQL's row lock, SQLite's one writer connection
        loser = asyncio.create_task(_committed_claim(s2, seeded))
        await s1.commit()
        assert won is not None and won.attempts == 1
        assert await loser is None
    await _assert_running(session_factory, seeded, attempts=1)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", [pytest.param("postgresql", id="postgresql")], indirect=True)
async def test_on_postgresql_a_second_claim_waits_for_the_row_lock_then_loses(
    engine: AsyncEngine, session_factory: Factory
) -> None:
    seeded = await seed(session_factory)
    async with session_factory() as s1, session_factory() as s2, engine.connect() as observer:
        observer = await observer.execution_options(isolation_level="AUTOCOMMIT")
        s1_pid = await s1.scalar(text("SELECT pg_backend_pid()"))
        s2_pid = await s2.scalar(text("SELECT pg_backend_pid()"))
        won = await claim(s1, seeded)  # holds the row lock until s1 commits
        assert won is not None and won.attempts == 1
        loser = asyncio.create_task(_committed_claim(s2, seeded))

        async def blocked_by_s1() -> bool:
            if loser.done():
                return True
            blockers = await observer.scalar(text("SELECT pg_blocking_pids(:pid)"), {"pid": s2_pid})
            return s1_pid in blockers

        await until(blocked_by_s1)  # observed in pg_locks, not assumed after a sleep
        assert not loser.done(), "the second claim did not wait for the first one's row lock"
        await s1.commit()
        assert await loser is None  # re-checked the committed row: running, not stale
    await _assert_running(session_factory, seeded, attempts=1)


async def test_exactly_one_of_many_concurrent_claims_wins(session_factory: Factory) -> None:
    requests = [await seed(session_factory, user=f"u{i}", photo=f"photo {i}".encode()) for i in range(3)]
    claims = [_claim_and_commit(session_factory, r.public_id) for _ in range(CLAIMERS) for r in requests]
    results = await asyncio.gather(*claims)
    winners = sorted((r for r in results if r is not None), key=lambda job: job.id)
    assert [job.id for job in winners] == [r.request_id for r in requests]  # one per request, not one overall
    assert all(job.attempts == 1 for job in winners)
    for seeded in requests:
        await _assert_running(session_factory, seeded, attempts=1)


async def test_workers_with_their_own_engines_claim_once(migrated_db_url: str, session_factory: Factory) -> None:
    """As separate worker processes do: one engine (connection pool) each, so on SQLite too the claims
    really overlap (within one engine SQLite's single connection runs them one after another)."""
    queued = await seed(session_factory)
    stale = await seed(session_factory, user="u2", photo=b"stale")
    async with session_factory.begin() as s:
        assert await claim(s, stale)  # its worker died an hour ago
        await s.execute(
            update(CaptionRequest)
            .where(CaptionRequest.id == stale.request_id)
            .values(updated_at=utcnow() - timedelta(hours=1))
        )
    cutoff = utcnow() - timedelta(minutes=10)
    engines = [create_engine(migrated_db_url) for _ in range(CLAIMERS)]
    try:
        factories = [make_session_factory(e) for e in engines]
        claims = [_claim_and_commit(f, r.public_id, cutoff) for f in factories for r in (queued, stale)]
        results = await asyncio.gather(*claims)
    finally:
        await asyncio.gather(*(e.dispose() for e in engines))
    winners = sorted((r.id, r.attempts) for r in results if r is not None)
    assert winners == [(queued.request_id, 1), (stale.request_id, 2)]
    await _assert_running(session_factory, queued, attempts=1)
    await _assert_running(session_factory, stale, attempts=2)


async def test_a_finished_request_is_never_claimed(session_factory: Factory) -> None:
    done, failed, delivered = [await seed(session_factory, photo=f"photo {i}".encode()) for i in range(3)]
    async with session_factory.begin() as s:
        for seeded in (done, failed, delivered):
            assert await claim(s, seeded)
        await jobs.complete_request(s, request_id=done.request_id, text="a cat")
        await jobs.fail_request(
            s, request_id=failed.request_id, code=ErrorCode.BAD_IMAGE, message="no", max_attempts=3, permanent=True
        )
        await jobs.complete_request(s, request_id=delivered.request_id, text="a dog")
        assert await deliveries.mark_delivered(s, request_id=delivered.request_id)
    # Not even with a cutoff that makes every running request stale: only running ones are taken over.
    tomorrow = utcnow() + timedelta(days=1)
    finished = {done: RequestStatus.DONE, failed: RequestStatus.FAILED, delivered: RequestStatus.DELIVERED}
    claims = [
        _claim_and_commit(session_factory, r.public_id, cutoff) for r in finished for cutoff in (FAR_PAST, tomorrow)
    ]
    assert await asyncio.gather(*claims) == [None] * len(claims)
    async with session_factory() as s:
        for seeded, status in finished.items():
            req = await request_row(s, seeded.request_id)
            assert req is not None and (req.status, req.attempts) == (status, 1)


async def test_a_stale_running_request_is_taken_over_exactly_once(session_factory: Factory) -> None:
    seeded = await seed(session_factory)
    fresh = await seed(session_factory, user="u2", photo=b"fresh")
    async with session_factory.begin() as s:
        assert await claim(s, seeded)  # a worker claims it, then dies
        assert await claim(s, fresh)  # another is still working on this one
        await s.execute(
            update(CaptionRequest)
            .where(CaptionRequest.id == seeded.request_id)
            .values(updated_at=utcnow() - timedelta(hours=1))
        )
    cutoff = utcnow() - timedelta(minutes=10)  # the broker re-delivers after this much idle time
    claims = [_claim_and_commit(session_factory, r.public_id, cutoff) for _ in range(CLAIMERS) for r in (seeded, fresh)]
    results = await asyncio.gather(*claims)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].id == seeded.request_id and winners[0].attempts == 2
    req = await _assert_running(session_factory, seeded, attempts=2)
    assert req.updated_at > cutoff and req.started_at > cutoff  # type: ignore[operator]
    await _assert_running(session_factory, fresh, attempts=1)  # a live worker's request is left alone
    # Taken over means touched: one more redelivery now loses.
    assert await _claim_and_commit(session_factory, seeded.public_id, cutoff) is None
