"""Async engine and session factory, schema checks and programmatic Alembic migrations.

Typical start-up::

    engine = create_engine(settings.database_url)
    await check_schema_current(engine)  # refuse to run against an old schema
    session_factory = make_session_factory(engine)
    async with session_factory.begin() as session:  # commits on success, rolls back on error
        ...

``captionbot db upgrade`` is ``upgrade(settings.database_url)`` (blocking; ``upgrade_async`` in async code).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

# Async drivers for plain URLs, so "postgresql://..." from a hosting provider just works.
_ASYNC_DRIVERS = {"postgresql": "asyncpg", "postgres": "asyncpg", "sqlite": "aiosqlite"}
# Key for pg_advisory_xact_lock: two processes upgrading at once take turns instead of colliding.
_MIGRATION_LOCK_KEY = 0x6361_7074_696F_6E  # "caption"
SQLITE_BUSY_TIMEOUT_MS = 5000


class SchemaOutdatedError(RuntimeError):
    """The database's Alembic revision is not the one this code was written for."""


def to_async_url(url: str) -> str:
    """``url`` with an async driver: ``postgresql://`` -> ``postgresql+asyncpg://`` and so on."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if parsed.drivername == backend and backend in _ASYNC_DRIVERS:
        name = "postgresql" if backend == "postgres" else backend
        parsed = parsed.set(drivername=f"{name}+{_ASYNC_DRIVERS[backend]}")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, *, sqlite_foreign_keys: bool = True, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``; nothing connects until first use.

    For SQLite every connection gets WAL (readers don't block the writer), enforced foreign keys and
    a busy timeout (a second writer waits instead of failing at once with "database is locked").
    The database's directory is created if missing.
    """
    url = to_async_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_async_engine(url, **kwargs)

    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    if not in_memory and "poolclass" not in kwargs:
        # SQLite lets one writer in at a time and makes the others poll with growing sleeps (its busy
        # handler): under load those sleeps, not the work, set the latency. One shared connection makes
        # sessions wait their turn in the pool's queue instead: first come, first served, no polling.
        kwargs.setdefault("pool_size", 1)
        kwargs.setdefault("max_overflow", 0)
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, much faster commits
        cursor.execute(f"PRAGMA foreign_keys={'ON' if sqlite_foreign_keys else 'OFF'}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    return engine


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay usable after commit (no implicit lazy reloads in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False)


# --- Alembic ------------------------------------------------------------------------------------


def migrations_dir() -> Path:
    """The installed ``migrations`` package: Alembic's script location (no alembic.ini needed)."""
    import migrations

    return Path(migrations.__file__).resolve().parent


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic ``Config`` built in code, so migrations run from an installed package.

    The URL goes through ``config.attributes`` rather than the ini options, where a ``%`` in a
    password would be taken for interpolation.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if database_url is not None:
        config.attributes["database_url"] = to_async_url(database_url)
    return config


def head_revision() -> str:
    """The revision the code needs (the single head of the migration scripts)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head() or "base"


def _current_revisions(connection: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(connection).get_current_heads()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's Alembic revision, or None when it was never migrated."""
    async with engine.connect() as conn:
        heads = await conn.run_sync(_current_revisions)
    return heads[0] if heads else None


async def check_schema_current(engine: AsyncEngine) -> None:
    """Raise :class:`SchemaOutdatedError` unless the database is at the code's head revision."""
    script = ScriptDirectory.from_config(alembic_config())
    async with engine.connect() as conn:
        current = set(await conn.run_sync(_current_revisions))
    heads = set(script.get_heads())
    if current == heads:
        return
    needed = ", ".join(sorted(heads))
    at = ", ".join(sorted(current)) or "base (never migrated)"
    known = all(_revision_known(script, rev) for rev in current)
    if not known:
        raise SchemaOutdatedError(
            f"database schema is at {at}, which this code does not know (migrated by newer code?); "
            f"code needs {needed}: upgrade captionbot, or downgrade the database with that newer version"
        )
    raise SchemaOutdatedError(f"database schema is at {at}, code needs {needed}: run `captionbot db upgrade`")


def _revision_known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises several ResolutionError subclasses for unknown ids
        return False


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database at ``database_url`` up to ``revision`` (default: the latest); blocking.

    What ``captionbot db upgrade`` runs. From async code use :func:`upgrade_async`.
    """
    _run_blocking(upgrade_async(database_url, revision))


async def upgrade_reporting(database_url: str) -> tuple[str | None, str | None]:
    """Upgrade to the latest revision; (revision before, revision after), None = never migrated."""
    engine = create_engine(to_async_url(database_url))
    try:
        before = await current_revision(engine)
        await upgrade_async(database_url)
        after = await current_revision(engine)
    finally:
        await engine.dispose()
    return before, after


def downgrade(database_url: str, revision: str) -> None:
    """Migrate the database at ``database_url`` down to ``revision`` (``"base"`` = empty); blocking."""
    _run_blocking(downgrade_async(database_url, revision))


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """:func:`upgrade` for code already running in an event loop."""
    await _run_alembic(database_url, command.upgrade, revision)


async def downgrade_async(database_url: str, revision: str) -> None:
    """:func:`downgrade` for code already running in an event loop."""
    await _run_alembic(database_url, command.downgrade, revision)


def _run_blocking(coro: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    # Called from inside an event loop (which asyncio.run refuses): run it on a thread's own loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()


async def _run_alembic(database_url: str, fn: Callable[..., Any], revision: str) -> None:
    """Run an Alembic command on our own async connection (migrations/env.py picks it up).

    Driving the command from inside ``run_sync`` works in an already running event loop (tests, an
    async CLI), where env.py's own ``asyncio.run`` could not.
    """
    config = alembic_config(database_url)
    # SQLite: foreign keys off, as Alembic's batch mode recreates tables that others reference.
    engine = create_engine(database_url, poolclass=NullPool, sqlite_foreign_keys=False)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run_with_connection, config, fn, revision)
            await conn.commit()
    finally:
        await engine.dispose()


def _run_with_connection(connection: Connection, config: Config, fn: Callable[..., Any], revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    config.attributes["connection"] = connection
    fn(config, revision)
    if connection.dialect.name == "sqlite":
        # Foreign keys were off during the migration: make sure it left none dangling.
        problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise RuntimeError(f"migration left dangling foreign keys: {problems[:5]}")


__all__ = [
    "SchemaOutdatedError",
    "alembic_config",
    "check_schema_current",
    "create_engine",
    "current_revision",
    "downgrade",
    "downgrade_async",
    "head_revision",
    "make_session_factory",
    "migrations_dir",
    "to_async_url",
    "upgrade",
    "upgrade_async",
]
