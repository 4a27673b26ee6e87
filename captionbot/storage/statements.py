"""Statement helpers the storage modules share: the dialect's upsert INSERT and chunked IN lists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from sqlalchemy import CursorResult, Executable
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

# Bulk UPDATE/DELETE: also update (or drop) the matching objects already loaded in the session.
FETCH: Final = {"synchronize_session": "fetch"}


_CHUNK = 500  # rows per IN (...) list: far below SQLite's and asyncpg's bound-parameter limits


def dialect_insert(session: AsyncSession, model: type[Any]) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing/do_update`` on both backends."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(model)
    if name == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"unsupported database backend {name!r} (use PostgreSQL or SQLite)")


def chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


async def rows_changed(session: AsyncSession, statement: Executable) -> int:
    """Run a bulk UPDATE/DELETE (synchronising the session) and return how many rows it touched."""
    result = await session.execute(statement, execution_options=FETCH)
    assert isinstance(result, CursorResult)  # what DML returns; Session.execute is typed as Result
    return result.rowcount
