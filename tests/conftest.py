"""Shared fixtures: a database on SQLite and on PostgreSQL, the migrated schema, an image store.

* ``db_url``: an empty database, once per backend (tests using it run twice). SQLite: a file in the
  test's tmp dir. PostgreSQL: one database created for the whole test session (dropped at the end),
  its schema wiped before each test; skipped with the reason when the server is unreachable. Set
  ``CAPTIONBOT_TEST_POSTGRES_URL`` to point at another server (default: postgres@127.0.0.1:5432).
  ``-m "not postgres"`` runs SQLite only.
* ``migrated_db_url`` / ``engine`` / ``session_factory``: the same database upgraded to the latest
  Alembic revision, with an async engine and an ``async_sessionmaker`` on it.
* ``image_store``: an empty :class:`ImageStore` in the tmp dir.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from captionbot.storage.db import create_engine, make_session_factory, upgrade_async
from captionbot.storage.imagestore import ImageStore
from tests.telegram.fake_api import FakeTelegram
from tests.tiny_model import BACKEND_PARAMS, open_backend

T = TypeVar("T")

POSTGRES_ADMIN_URL = os.environ.get("CAPTIONBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even if an event loop is running here."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_execute(url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _reachable(url: str) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5432), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """URL of a PostgreSQL database created for this test session (asyncpg driver)."""
    if not _reachable(POSTGRES_ADMIN_URL):
        pytest.skip(f"PostgreSQL is not reachable at {make_url(POSTGRES_ADMIN_URL).render_as_string()}")
    name = f"captionbot_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        _run(_pg_execute(POSTGRES_ADMIN_URL, f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # auth, permissions...: say why instead of erroring every test
        pytest.skip(f"cannot create a PostgreSQL test database: {exc!r}")
    url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        _run(_pg_execute(POSTGRES_ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"
    url = request.getfixturevalue("postgres_database")
    _run(_pg_execute(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public"))
    return url


@pytest.fixture
async def migrated_db_url(db_url: str) -> str:
    """``db_url`` upgraded to the latest migration."""
    await upgrade_async(db_url)
    return db_url


@pytest.fixture
async def engine(migrated_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on a freshly migrated database (SQLite and PostgreSQL)."""
    return make_session_factory(engine)


@pytest.fixture
def image_store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


@pytest.fixture(params=BACKEND_PARAMS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """The two deployments the pipeline tests run on (SQLite + in-process queue, PostgreSQL + Redis);
    skips the second with a reason when its servers are not reachable."""
    async with open_backend(request, tmp_path) as b:
        yield b


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """A fake Telegram Bot API on a free loopback port (tests/telegram/fake_api.py)."""
    server = await FakeTelegram().start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def read_text(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set ``read_text.text``: every caption stored from then on has it as the text read in its
    photo, as the worker's reading step stores it (without the OCR engine, which these tests don't
    need): the service's delivery and caption look-ups carry it from the database."""
    from captionbot.storage import jobs

    real = jobs.complete_request
    state = SimpleNamespace(text=None)

    async def complete_request(session: Any, **kwargs: Any) -> Any:
        kwargs["photo_text"] = state.text
        return await real(session, **kwargs)

    monkeypatch.setattr(jobs, "complete_request", complete_request)
    return state
