"""Alembic environment: async engines (aiosqlite, asyncpg), batch mode on SQLite.

Two ways in:

* ``captionbot.storage.db.upgrade(url)`` (what ``captionbot db upgrade`` runs) hands over an open
  connection in ``config.attributes["connection"]``;
* the ``alembic`` command line (``alembic -c migrations/alembic.ini ...``, for writing revisions)
  gets no connection, and the URL comes from ``-x url=...``, ``sqlalchemy.url`` or the settings.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from captionbot.storage.db import create_engine, to_async_url
from captionbot.storage.models import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None:  # the alembic command line, with migrations/alembic.ini
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = (
        config.attributes.get("database_url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        from captionbot.settings import Settings

        url = Settings().database_url
    assert url is not None
    return to_async_url(url)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=False,  # server defaults render differently per backend
        **kwargs,
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (``alembic upgrade head --sql``)."""
    url = _database_url()
    _configure(url=url, literal_binds=True, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    # SQLite can't ALTER most things: batch mode copies the table instead.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_database_url(), poolclass=NullPool, sqlite_foreign_keys=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_on)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
