"""The moderator's page at /moderate: corrections to approve or reject, reported captions, who gives
feedback (person numbers only), and the model versions with promote, roll back and the rating plot.

On only when the front end has a :class:`~captionbot.service.ModerationService` and
``web_moderator_password`` is set; otherwise every /moderate address says how to turn it on. A
moderator signs in with the password (attempts limited per address, CSRF token rotated on success)
for 12 hours. Every change is a CSRF-checked POST answered by a redirect with a one-line note.
Corrections and captions are shown, never logged.
"""

from __future__ import annotations

import functools
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import Session, get_session
from markupsafe import Markup

from bot.web.context import error_response, front_end
from bot.web.rating_chart import rating_chart_svg
from bot.web.security import CSRF_FIELD, CSRF_KEY, check_csrf, client_address
from captionbot.service import ModerationService, NothingToRollBackError
from captionbot.service.moderation import PromoteError
from captionbot.texts import web as texts

log = logging.getLogger(__name__)

MODERATOR_KEY = "moderator"
SIGNED_IN_AT_KEY = "moderator_since"
NOTE_KEY = "moderator_note"
SIGN_IN_FOR_S = 12 * 3600
HOME, MODELS, LOGIN = "/moderate", "/moderate/models", "/moderate/login"

ModeratorHandler = Callable[[web.Request, ModerationService], Awaitable[web.StreamResponse]]


def _service(request: web.Request) -> ModerationService | None:
    """The moderation service when the page is on (service configured and a password set)."""
    fe = front_end(request)
    return fe.moderation if fe.settings.web_moderator_password is not None else None


def _off_page(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("moderate_off.html", request, {}, status=404)


def _signed_in(session: Session) -> bool:
    """A moderator signed in less than 12 hours ago; an expired sign-in is forgotten here."""
    since = session.get(SIGNED_IN_AT_KEY)
    fresh = isinstance(since, int | float) and 0 <= time.time() - since < SIGN_IN_FOR_S
    if session.get(MODERATOR_KEY) is True and fresh:
        return True
    if MODERATOR_KEY in session or SIGNED_IN_AT_KEY in session:
        session.pop(MODERATOR_KEY, None)
        session.pop(SIGNED_IN_AT_KEY, None)
    return False


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def _note(request: web.Request, text: str, *, ok: bool = True) -> None:
    """A one-line result for the next page (shown once, after the redirect)."""
    (await get_session(request))[NOTE_KEY] = ["ok" if ok else "error", text]


async def _take_note(request: web.Request) -> dict[str, Any] | None:
    raw = (await get_session(request)).pop(NOTE_KEY, None)
    if isinstance(raw, list) and len(raw) == 2:
        return {"ok": raw[0] == "ok", "text": str(raw[1])}
    return None


async def _csrf_ok(request: web.Request) -> bool:
    form = await request.post()
    token = form.get(CSRF_FIELD)
    return await check_csrf(request, token if isinstance(token, str) else None)


def moderator_only(handler: ModeratorHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The page must be on, the moderator signed in and, for a POST, the CSRF token valid."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        service = _service(request)
        if service is None:
            return _off_page(request)
        if not _signed_in(await get_session(request)):
            if request.method == "POST":
                return error_response(request, 401, texts.MOD_SIGN_IN_FIRST)
            return _redirect(LOGIN)
        if request.method == "POST" and not await _csrf_ok(request):
            return error_response(request, 403, texts.BAD_FORM)
        return await handler(request, service)

    return wrapped


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def _mean(value: float | None) -> str:
    return "no ratings" if value is None else f"{value:+.2f}"


def _flat(metrics: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = []
    for key, value in metrics.items():
        path = (*prefix, str(key))
        if isinstance(value, dict):
            out.extend(_flat(value, path))
        elif isinstance(value, int | float | str) and not isinstance(value, bool):
            out.append((path, value))
    return out


def metric_summary(metrics: dict[str, Any], *, most: int = 5) -> list[str]:
    """A few readable metrics: caption scores (CIDEr-D, BLEU-4, fixed set, holdout) when recorded
    (the scores *after* a round, not before), else the first key=value pairs."""
    flat = _flat(metrics)
    known = [
        (path, v)
        for path, v in flat
        if path[0] != "before" and any(k in " ".join(path).lower() for k in ("cider", "bleu", "fixed", "holdout"))
    ]

    def shown(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    if known:
        return [" ".join(p for p in path if p != "after") + f" {shown(v)}" for path, v in known[:most]]
    return [".".join(path) + f"={shown(v)}" for path, v in flat[:most]]


def _page(request: web.Request, template: str, context: dict[str, Any]) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, {"when": _when, "mean": _mean, **context})


async def _ids(request: web.Request, field: str) -> list[int]:
    form = await request.post()
    return sorted({int(v) for v in form.getall(field, []) if isinstance(v, str) and v.isdigit()})


# -- signing in and out ------------------------------------------------------------------------------


async def login_form(request: web.Request) -> web.StreamResponse:
    if _service(request) is None:
        return _off_page(request)
    if _signed_in(await get_session(request)):
        return _redirect(HOME)
    return _page(request, "moderate_login.html", {"error": None, "note": await _take_note(request)})


async def login(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    password = front_end(request).settings.web_moderator_password
    if service is None or password is None:
        return _off_page(request)
    if not await _csrf_ok(request):
        return error_response(request, 403, texts.BAD_FORM)
    wait = front_end(request).limits.logins.take(client_address(request))
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        response = error_response(request, 429, texts.MOD_TOO_MANY_ATTEMPTS.format(seconds=seconds))
        response.headers["Retry-After"] = str(seconds)
        return response
    given = (await request.post()).get("password")
    given_bytes = given.encode() if isinstance(given, str) else b""
    if not hmac.compare_digest(given_bytes, password.get_secret_value().encode()):
        log.info("moderator sign-in refused")
        context = {"error": texts.MOD_WRONG_PASSWORD, "note": None}
        response = _page(request, "moderate_login.html", context)
        response.set_status(401)
        return response
    session = await get_session(request)
    session.pop(CSRF_KEY, None)  # a new token from now on: one seen before signing in is useless
    session[MODERATOR_KEY] = True
    session[SIGNED_IN_AT_KEY] = time.time()
    log.info("moderator signed in")
    return _redirect(HOME)


@moderator_only
async def logout(request: web.Request, service: ModerationService) -> web.StreamResponse:
    session = await get_session(request)
    session.pop(MODERATOR_KEY, None)
    session.pop(SIGNED_IN_AT_KEY, None)
    session.pop(CSRF_KEY, None)
    await _note(request, texts.MOD_SIGNED_OUT)
    return _redirect(LOGIN)


# -- corrections, reports, people ----------------------------------------------------------------------


@moderator_only
async def home(request: web.Request, service: ModerationService) -> web.StreamResponse:
    context = {
        "corrections": await service.corrections_to_review(limit=100),
        "flagged": await service.flagged(),
        "people": await service.people(),
        "require_review": service.settings.learn_require_review,
        "note": await _take_note(request),
    }
    return _page(request, "moderate_home.html", context)


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


@moderator_only
async def photo(request: web.Request, service: ModerationService) -> web.StreamResponse:
    data = await service.photo(request.match_info["sha"])
    if data is None:
        raise web.HTTPNotFound()
    headers = {"Cache-Control": "private, max-age=3600"}
    return web.Response(body=data, content_type=_image_type(data), headers=headers)


@moderator_only
async def review(request: web.Request, service: ModerationService) -> web.StreamResponse:
    verdict = (await request.post()).get("verdict")
    if verdict not in ("approve", "reject"):
        return error_response(request, 400, texts.BAD_FORM)
    ids = await _ids(request, "feedback_id")
    if not ids:
        await _note(request, texts.MOD_NONE_CHOSEN, ok=False)
        return _redirect(HOME)
    changed = await service.review(ids, approve=verdict == "approve")
    done = "Approved" if verdict == "approve" else "Rejected"
    await _note(request, f"{done} {changed} correction{'s' if changed != 1 else ''}.")
    return _redirect(HOME)


@moderator_only
async def clear_flags(request: web.Request, service: ModerationService) -> web.StreamResponse:
    ids = await _ids(request, "caption_id")
    if not ids:
        await _note(request, texts.MOD_NONE_CHOSEN, ok=False)
        return _redirect(HOME)
    changed = await service.clear_flags(ids)
    await _note(request, f"Cleared {changed} report{'s' if changed != 1 else ''}.")
    return _redirect(HOME)


# -- model versions ------------------------------------------------------------------------------------


@moderator_only
async def models(request: web.Request, service: ModerationService) -> web.StreamResponse:
    points = await service.rating_over_time(days=30)
    chart = rating_chart_svg(points)
    context = {
        "versions": await service.versions(),
        "metric_summary": metric_summary,
        "points": points,
        "chart": Markup(chart) if chart is not None else None,  # built and escaped in rating_chart
        "note": await _take_note(request),
    }
    return _page(request, "moderate_models.html", context)


@moderator_only
async def promote(request: web.Request, service: ModerationService) -> web.StreamResponse:
    name = (await request.post()).get("name")
    if not isinstance(name, str) or not name.strip():
        await _note(request, texts.MOD_NONE_CHOSEN, ok=False)
        return _redirect(MODELS)
    try:
        ref = await service.promote(name.strip())
    except PromoteError as exc:
        await _note(request, f"Not promoted: {exc}.", ok=False)
        return _redirect(MODELS)
    log.info("moderator promoted model version %s", ref.name)
    await _note(request, texts.MOD_PROMOTED.format(name=ref.name))
    return _redirect(MODELS)


@moderator_only
async def rollback(request: web.Request, service: ModerationService) -> web.StreamResponse:
    try:
        was, now = await service.rollback()
    except NothingToRollBackError as exc:
        await _note(request, f"Nothing to roll back: {exc}.", ok=False)
        return _redirect(MODELS)
    log.info("moderator rolled back from %s to %s", was.name, now.name)
    await _note(request, texts.MOD_ROLLED_BACK.format(was=was.name, now=now.name))
    return _redirect(MODELS)


async def anything_else(request: web.Request) -> web.StreamResponse:
    """Any other /moderate address: the "page is off" note when off, else not found."""
    if _service(request) is None:
        return _off_page(request)
    raise web.HTTPNotFound()


def add_routes(app: web.Application) -> None:
    """Register this page's routes on ``app``."""
    app.router.add_get("/moderate", home)
    app.router.add_get(LOGIN, login_form)
    app.router.add_post(LOGIN, login)
    app.router.add_post("/moderate/logout", logout)
    app.router.add_get("/moderate/photo/{sha:[0-9a-f]{64}}", photo)
    app.router.add_post("/moderate/review", review)
    app.router.add_post("/moderate/flags/clear", clear_flags)
    app.router.add_get(MODELS, models)
    app.router.add_post("/moderate/models/promote", promote)
    app.router.add_post("/moderate/models/rollback", rollback)
    app.router.add_route("*", "/moderate/{tail:.*}", anything_else)
