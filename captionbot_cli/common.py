"""Small helpers the command modules share (no heavy imports)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from captionbot.settings import Settings

DEFAULT_DATA = "../shared/datasets/flickr8k"

_T = TypeVar("_T")


def need_model_extra() -> None:
    """Exit with a one-line hint when torch (the ``model`` extra) is not installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        typer.echo("This command needs the model extra: pip install 'captionbot[model]'", err=True)
        raise typer.Exit(2) from None


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` to stderr; ``raise fail(...)`` ends the command with status 2."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run``, also when an event loop already runs here (tests): then on a thread's own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@contextlib.asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the configured database; exits 2 unless its schema is the one this code needs."""
    from captionbot.storage.db import SchemaOutdatedError, check_schema_current, create_engine, make_session_factory

    engine = create_engine(settings.db_url)
    try:
        try:
            await check_schema_current(engine)
        except SchemaOutdatedError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        yield make_session_factory(engine)
    finally:
        await engine.dispose()
