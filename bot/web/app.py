"""The web front end: one aiohttp application serving the public page and the moderator's page.

``WebFrontEnd(settings, service, moderation)`` registers the ``web`` delivery handler at once (before
the queues start), ``start()`` listens on ``settings.web_port`` and ``stop()`` closes. The pages read
every result from storage through the service, so nothing depends on which process got the delivery
notice; the handler only wakes pages that are waiting for that request.

Pages are rendered on the server (Jinja2, autoescaped) and work without JavaScript; ``app.js`` makes
the answer appear without a reload. No third-party scripts, styles or fonts: the
Content-Security-Policy allows this origin only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import get_session, session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from bot.web.context import PARTS, PageParts, ResultWaiters, error_response, front_end
from bot.web.security import CSRF_FIELD, AddressLimits, cookie_key, csrf_token
from captionbot.errors import StartupError
from captionbot.service import CaptionService, Delivery, ModerationService
from captionbot.settings import Settings
from captionbot.texts import web as web_texts

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
COOKIE_NAME = "captionbot"
COOKIE_MAX_AGE_S = 365 * 24 * 3600  # a visitor keeps their photos and answers for a year on this browser
#: Room for the multipart envelope around the largest photo allowed.
FORM_OVERHEAD_BYTES = 64 * 1024

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class WebFrontEnd:
    """The web page as a chat adapter: ``start()`` / ``stop()``; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        service: CaptionService,
        moderation: ModerationService | None = None,
        *,
        port: int | None = None,
        host: str | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.moderation = moderation
        self.host = host if host is not None else settings.web_host
        self.port = port if port is not None else settings.web_port
        self.waiters = ResultWaiters()
        self.limits = AddressLimits(settings)
        self.parts = PageParts(settings, service, moderation, self.waiters, self.limits)
        self._runner: web.AppRunner | None = None
        service.register_delivery_handler("web", self._delivered)

    async def _delivered(self, delivery: Delivery) -> str:
        self.waiters.wake(delivery.request_id)
        return "page"  # the answer is shown on the page that asked; nothing to send

    def build_app(self) -> web.Application:
        app = web.Application(
            client_max_size=self.settings.max_image_bytes + FORM_OVERHEAD_BYTES,
            middlewares=[
                security_headers,
                session_middleware(
                    EncryptedCookieStorage(
                        cookie_key(self.settings),
                        cookie_name=COOKIE_NAME,
                        max_age=COOKIE_MAX_AGE_S,
                        httponly=True,
                        samesite="Lax",
                        secure=self.settings.web_behind_https,
                    )
                ),
                friendly_errors,
            ],
        )
        app[PARTS] = self.parts
        app[aiohttp_jinja2.static_root_key] = "/static"
        aiohttp_jinja2.setup(
            app,
            loader=jinja2.PackageLoader("bot.web", "templates"),
            autoescape=jinja2.select_autoescape(default=True),
            context_processors=[page_context],
            undefined=jinja2.StrictUndefined,
        )
        from bot.web import moderation, public  # the two pages' routes

        public.add_routes(app)
        moderation.add_routes(app)
        app.router.add_static("/static", STATIC_DIR)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.build_app(), access_log=None)  # no addresses or paths in logs
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise StartupError(
                f"the web page can't listen on {self.host}:{self.port} ({exc.strerror or exc}); "
                "set CAPTIONBOT_WEB_PORT to a free port, or to 0 to turn the page off"
            ) from None
        if self._runner.addresses:  # the port actually bound (port 0 picks a free one)
            self.port = int(self._runner.addresses[0][1])
        log.info("web page at %s", self.url)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def page_context(request: web.Request) -> dict[str, Any]:
    """What every template gets: the CSRF field, whether the moderator's page is on."""
    session = await get_session(request)
    fe = front_end(request)
    return {
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(session),
        "moderation_on": fe.moderation is not None and fe.settings.web_moderator_password is not None,
        "is_moderator": bool(session.get("moderator")),
        "texts": web_texts,
    }


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


_ERROR_PAGES = {
    404: web_texts.NOT_FOUND,
    405: web_texts.NOT_ALLOWED,
    413: web_texts.TOO_LARGE,
}


@web.middleware
async def friendly_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors as a short page (or JSON for the page's script), never a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.status not in _ERROR_PAGES:
            raise
        return error_response(request, exc.status, _ERROR_PAGES[exc.status])
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("web page %s failed", request.path)  # the path holds no personal data
        return error_response(request, 500, web_texts.SERVER_ERROR)


__all__ = ["WebFrontEnd"]
