"""Alembic migrations match the models and run both ways, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from captionbot.storage.db import (
    SchemaOutdatedError,
    alembic_config,
    check_schema_current,
    create_engine,
    current_revision,
    downgrade,
    downgrade_async,
    head_revision,
    migrations_dir,
    upgrade,
    upgrade_async,
)
from captionbot.storage.models import Base


def _diff(connection: Connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def _schema(url: str) -> tuple[list, set[str], str | None]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
            tables = await conn.run_sync(_tables)
        return diff, tables, await current_revision(engine)
    finally:
        await engine.dispose()


def _revisions_base_to_head() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def test_single_head_and_config_without_ini() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1, "merge the migration branches"
    assert (migrations_dir() / "env.py").is_file()
    assert head_revision() == script.get_current_head()


async def test_upgrade_to_head_matches_models(db_url: str) -> None:
    await upgrade_async(db_url)
    diff, tables, revision = await _schema(db_url)
    assert diff == [], f"models and migrations disagree: write a migration for {diff}"
    assert tables == set(Base.metadata.tables)
    assert revision == head_revision()
    await upgrade_async(db_url)  # already at head: a no-op
    assert (await _schema(db_url))[2] == head_revision()


async def test_every_revision_downgrades_and_upgrades_again(db_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    for rev in _revisions_base_to_head():
        down = script.get_revision(rev).down_revision or "base"
        assert isinstance(down, str), "merge revisions need their own test"
        await upgrade_async(db_url, rev)
        await downgrade_async(db_url, down)
        await upgrade_async(db_url, rev)
        assert (await _schema(db_url))[2] == rev
    await downgrade_async(db_url, "base")
    _, tables, revision = await _schema(db_url)
    assert tables == set() and revision is None
    await upgrade_async(db_url)
    diff, tables, _ = await _schema(db_url)
    assert diff == [] and tables == set(Base.metadata.tables)


async def test_check_schema_current_says_what_to_do(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with pytest.raises(SchemaOutdatedError) as excinfo:
            await check_schema_current(engine)
        assert str(excinfo.value) == (
            f"database schema is at base (never migrated), code needs {head_revision()}: run `captionbot db upgrade`"
        )
        await upgrade_async(db_url)
        await check_schema_current(engine)  # at head: no error

        # A revision this code has never heard of (the database was migrated by newer code).
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
        with pytest.raises(SchemaOutdatedError, match="f00dfeed, which this code does not know"):
            await check_schema_current(engine)
    finally:
        await engine.dispose()


async def test_check_schema_current_when_behind(db_url: str) -> None:
    revisions = _revisions_base_to_head()
    if len(revisions) < 2:
        pytest.skip("only one revision so far")
    await upgrade_async(db_url, revisions[-2])
    engine = create_engine(db_url)
    try:
        with pytest.raises(SchemaOutdatedError, match=f"at {revisions[-2]}, code needs {revisions[-1]}"):
            await check_schema_current(engine)
    finally:
        await engine.dispose()


def test_blocking_upgrade_as_the_cli_calls_it(db_url: str) -> None:
    upgrade(db_url)  # no event loop running: what `captionbot db upgrade` does
    assert asyncio.run(_schema(db_url))[2] == head_revision()
    downgrade(db_url, "base")
    assert asyncio.run(_schema(db_url))[2] is None


async def test_blocking_upgrade_inside_a_running_loop(db_url: str) -> None:
    upgrade(db_url)  # runs on a helper thread instead of failing in asyncio.run
    assert (await _schema(db_url))[2] == head_revision()


async def test_error_messages_become_codes_in_place(db_url: str) -> None:
    """0004 moves the "[code] message" a failed request carried into the error_code column."""
    await upgrade_async(db_url, "0003")
    engine = create_engine(db_url)
    rows = {1: "[missing_image] I no longer have that photo.", 2: "worker crashed", 3: None}
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO users (id, platform, platform_user_id, training_opt_out, created_at) "
                    "VALUES (1, 'telegram', '7', false, CURRENT_TIMESTAMP)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO chats (id, platform, platform_chat_id, kind, autocaption, created_at) "
                    "VALUES (1, 'telegram', '7', 'private', false, CURRENT_TIMESTAMP)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO images (id, sha256, size_bytes, width, height, mime, created_at) "
                    "VALUES (1, :sha, 1, 1, 1, 'image/png', CURRENT_TIMESTAMP)"
                ),
                {"sha": "0" * 64},
            )
            for rid, error in rows.items():
                await conn.execute(
                    text(
                        "INSERT INTO caption_requests (id, public_id, platform, chat_id, requester_id, image_id, "
                        "status, attempts, delivery_attempts, error, reply_context, created_at, updated_at) "
                        "VALUES (:id, :pid, 'telegram', 1, 1, 1, 'failed', 1, 0, :error, '{}', "
                        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"id": rid, "pid": f"{rid:032x}", "error": error},
                )
        await engine.dispose()
        await upgrade_async(db_url, "0004")
        engine = create_engine(db_url)
        async with engine.connect() as conn:
            got = (await conn.execute(text("SELECT id, error_code, error FROM caption_requests ORDER BY id"))).all()
        assert [tuple(r) for r in got] == [
            (1, "missing_image", "I no longer have that photo."),
            (2, "caption_error", "worker crashed"),
            (3, None, None),
        ]
        await engine.dispose()
        await downgrade_async(db_url, "0003")  # and back: the code returns into the message
        engine = create_engine(db_url)
        async with engine.connect() as conn:
            back = (await conn.execute(text("SELECT error FROM caption_requests ORDER BY id"))).scalars().all()
        assert back == ["[missing_image] I no longer have that photo.", "[caption_error] worker crashed", None]
    finally:
        await engine.dispose()
