"""Acknowledge a Telegram update only once it is handled, so a crash never loses a photo.

With long polling, Telegram forgets an update once a later ``getUpdates`` asks for a higher
``offset``. python-telegram-bot asks again at once, while the photos it just fetched are still
being downloaded and stored; a crash in that moment would lose them. Here the next ``getUpdates``
waits (up to ``max_wait_s``) until every update it would acknowledge has been handled: its request
row committed. After a crash Telegram sends those updates again, and intake recognises the ones it
already took by their intake key, so none is taken twice.

Two public extension points of python-telegram-bot: an ``ExtBot`` whose ``get_updates`` waits, and
an ``Application`` whose ``process_update`` reports when an update is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from telegram import Update
from telegram.ext import Application, ExtBot

log = logging.getLogger(__name__)


class HandledUpdates:
    """Update ids fetched and not yet handled."""

    def __init__(self, max_wait_s: float = 60.0) -> None:
        self.max_wait_s = max_wait_s
        self._open: set[int] = set()
        self._changed = asyncio.Condition()

    def fetched(self, update_ids: list[int]) -> None:
        self._open.update(update_ids)

    async def handled(self, update_id: int) -> None:
        async with self._changed:
            self._open.discard(update_id)
            self._changed.notify_all()

    async def wait_below(self, offset: int) -> None:
        """Return once every fetched update with an id below ``offset`` is handled (or gave up)."""

        def done() -> bool:
            return not any(i < offset for i in self._open)

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.max_wait_s), self._changed:
                await self._changed.wait_for(done)
                return
        stuck = sorted(i for i in self._open if i < offset)
        log.warning("%d update(s) still being handled after %.0f s; acknowledging them", len(stuck), self.max_wait_s)
        self._open.difference_update(stuck)


class AckAfterHandlingBot(ExtBot[Any]):
    """``getUpdates`` acknowledges (asks past) only updates that are handled."""

    def __init__(self, *args: Any, handled: HandledUpdates, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handled = handled

    async def get_updates(self, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        offset = kwargs.get("offset", args[0] if args else None)
        if offset:
            await self._handled.wait_below(int(offset))
        updates = await super().get_updates(*args, **kwargs)
        self._handled.fetched([u.update_id for u in updates])
        return updates


class ReportingApplication(Application[Any, Any, Any, Any, Any, Any]):
    """Tells :class:`HandledUpdates` when each update's handlers are done (or failed)."""

    def __init__(self, *, handled: HandledUpdates, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handled = handled

    async def process_update(self, update: object) -> None:
        try:
            await super().process_update(update)
        finally:
            if isinstance(update, Update):
                await self._handled.handled(update.update_id)
