"""Fixtures for the Telegram end-to-end tests: a fake Bot API server and the real stack around it.

The stack is the one ``captionbot run`` starts (SQLite + ``memory://`` broker + the caption worker
with the tiny model + CaptionService), with the Telegram adapter talking to the fake server over
real HTTP. Helpers wait on the fake server's recorded state; nothing sleeps.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.gated_engine import BatchGate
from tests.telegram.fake_api import FakeTelegram
from tests.tiny_model import Backend, make_settings


@pytest.fixture
async def backend(tmp_path: Path) -> Backend:
    from captionbot.storage.db import upgrade_async

    url = f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"
    await upgrade_async(url)
    return Backend(url, "memory://")


@pytest.fixture
def settings(tmp_path: Path, backend: Backend, fake: FakeTelegram) -> Any:
    return telegram_settings(tmp_path, backend, fake)


def telegram_settings(tmp_path: Path, backend: Backend, fake: FakeTelegram, **overrides: Any) -> Any:
    """Fast pipeline settings, with the bot pointed at the fake server."""
    return make_settings(
        tmp_path, backend, telegram_bot_token=fake.token, telegram_api_base_url=fake.base_url, **overrides
    )


@contextlib.asynccontextmanager
async def bot_stack(
    settings: Any,
    *,
    via_runtime: bool = False,
    telegram: dict[str, Any] | None = None,
    gate: BatchGate | None = None,
    **open_kwargs: Any,
) -> AsyncIterator[Any]:
    """A started runtime Stack with the Telegram adapter.

    ``via_runtime``: the adapter comes from the runtime's registered factory (``bot.telegram.app:build``)
    exactly as in production. Otherwise ``telegram`` overrides adapter options; the queue status
    message is then off unless asked for (``status_after_s``), so replies are deterministic.
    ``gate``: the worker's batches wait at it from when the stack is open until the test opens it, or
    the stack closes (see tests/gated_engine.py).
    """
    from bot.telegram.app import build
    from captionbot_cli.runtime import Stack

    if gate is not None:
        open_kwargs["engine_loader"] = gate.engine_loader
    if via_runtime:
        stack = await Stack.open(settings, "all", **open_kwargs)
    else:
        overrides = {"status_after_s": 60.0, **(telegram or {})}

        def add_adapter(stack: Any) -> None:
            stack.adapters["telegram"] = build(stack.settings, stack.service, **overrides)

        stack = await Stack.open(settings, "all", adapters=False, before_start=add_adapter, **open_kwargs)
    if gate is not None:
        gate.arm()
    try:
        yield stack
    finally:
        if gate is not None:
            gate.open()  # the batch held must finish for the worker to stop
        await stack.close(grace=5)


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, callback data) of a message's inline keyboard."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


def caption_id_of(message: dict[str, Any]) -> int:
    """The caption id behind a caption message's buttons."""
    for _, data in buttons(message):
        if m := re.fullmatch(r"r1:(\d+):1", data):
            return int(m[1])
    raise AssertionError(f"no rating buttons on {message!r}")


async def wait_caption(fake: FakeTelegram, photo: dict[str, Any], *, within: float = 20.0) -> dict[str, Any]:
    """The bot's caption for ``photo``: a reply to it that carries rating buttons (whether it was
    sent as a new message or edited from a queue status message)."""
    chat_id = photo["chat"]["id"]

    def found() -> dict[str, Any] | None:
        for m in fake.replies_to(chat_id, photo["message_id"]):
            if any(data.startswith("r1:") for _, data in buttons(m)):
                return m
        return None

    return await fake.wait_for(found, within)


async def wait_answer(fake: FakeTelegram, query_id: str, *, within: float = 15.0) -> dict[str, Any]:
    """The bot's answerCallbackQuery parameters for a pressed button."""
    return await fake.wait_for(lambda: fake.answered.get(query_id), within)


async def wait_next(
    fake: FakeTelegram, message: dict[str, Any], *, having: str = "", within: float = 15.0
) -> dict[str, Any]:
    """The bot's first message in ``message``'s chat after it (containing ``having``), reply or not."""
    chat_id = message["chat"]["id"]

    def found() -> dict[str, Any] | None:
        for m in fake.bot_messages(chat_id):
            if m["message_id"] > message["message_id"] and having in m.get("text", ""):
                return m
        return None

    return await fake.wait_for(found, within)


async def requests(stack: Any) -> list[Any]:
    """All caption requests in the database, oldest first."""
    from sqlalchemy import select

    from captionbot.storage.models import CaptionRequest

    async with stack.session_factory() as session:
        return list(await session.scalars(select(CaptionRequest).order_by(CaptionRequest.id)))
