"""What every page handler reaches through the request: the front end's parts, and the site's
error page. Its own module, so app.py (which adds the pages' routes) and the pages both import it
without an import cycle."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import aiohttp_jinja2
from aiohttp import web

from bot.web.security import AddressLimits
from captionbot.service import CaptionService, ModerationService
from captionbot.settings import Settings


class ResultWaiters:
    """Pages waiting for a request's answer: ``wait(id, within_s)`` returns when the delivery handler
    (or anything else) calls ``wake(id)``, or after ``within_s``. Callers re-read storage either way.

    A wake with nobody waiting is remembered (the last ``remember`` ids): a page that read "not yet"
    just before the answer came, and only then began to wait, returns at once instead of sleeping
    through its slice."""

    def __init__(self, remember: int = 4096) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}
        self._woken: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    async def wait(self, request_id: str, within_s: float) -> None:
        if request_id in self._woken:
            return
        event = self._events.setdefault(request_id, asyncio.Event())
        self._waiting[request_id] = self._waiting.get(request_id, 0) + 1
        try:
            await asyncio.wait_for(event.wait(), within_s)
        except TimeoutError:
            pass
        finally:
            self._waiting[request_id] -= 1
            if not self._waiting[request_id]:
                del self._waiting[request_id]
                self._events.pop(request_id, None)

    def wake(self, request_id: str) -> None:
        self._woken[request_id] = None
        self._woken.move_to_end(request_id)
        while len(self._woken) > self._remember:
            self._woken.popitem(last=False)
        event = self._events.get(request_id)
        if event is not None:
            event.set()


class PageParts:
    """The parts a page handler uses, built once by the front end and kept in the application."""

    def __init__(
        self,
        settings: Settings,
        service: CaptionService,
        moderation: ModerationService | None,
        waiters: ResultWaiters,
        limits: AddressLimits,
    ) -> None:
        self.settings = settings
        self.service = service
        self.moderation = moderation
        self.waiters = waiters
        self.limits = limits


PARTS = web.AppKey("parts", PageParts)


def front_end(request: web.Request) -> PageParts:
    """The parts of the front end serving ``request``."""
    return request.app[PARTS]


def wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def error_response(request: web.Request, status: int, message: str) -> web.Response:
    """``message`` as JSON ``{"error": message}`` for the page's script, else as the site's small page."""
    if wants_json(request):
        return web.json_response({"error": message}, status=status)
    return aiohttp_jinja2.render_template("error.html", request, {"message": message}, status=status)
