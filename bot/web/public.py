"""The public page: send a photo, read its description, rate, correct or report it; see one's own
photos, stop training use of them or delete them all.

A visitor is a ``web`` user whose id lives in the session cookie (bot.web.security). Every request
id in an address is checked by the service against that id, so another visitor gets a 404. Forms
are plain POSTs with the CSRF token; ``app.js`` uses the JSON routes under ``/api/`` to wait for the
answer without reloading.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session
from multidict import MultiDictProxy

from bot.web.attention_png import AttentionImageError, forget_photos, render
from bot.web.context import error_response, front_end
from bot.web.public_upload import PLATFORM, Refusal, upload
from bot.web.security import CSRF_FIELD, AddressLimits, check_csrf, visitor_id
from captionbot import texts
from captionbot.service import (
    MAX_CORRECTION_CHARS,
    CaptionService,
    InvalidFeedbackError,
    RequestView,
    UnknownCaptionError,
)
from captionbot.settings import Settings
from captionbot.texts import web as web_texts

PAGE_WAIT_S = 10.0  # the no-JS answer page waits this long on the server before it refreshes itself
RECHECK_S = 3.0  # how often a waiting page looks at storage when no delivery woke it
API_WAIT_MAX_S = 25.0  # the longest long-poll (under common proxy timeouts)
ID = r"{request_id:[0-9a-f]{32}}"


def _parts(request: web.Request) -> tuple[CaptionService, Settings, AddressLimits]:
    fe = front_end(request)
    return fe.service, fe.settings, fe.limits


def _upload_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    settings = front_end(request).settings
    context = {
        "upload_key": secrets.token_urlsafe(24),
        "max_size": web_texts.max_size(settings.max_image_bytes),
        "error": error,
    }
    return aiohttp_jinja2.render_template("index.html", request, context, status=status)


def _retry_headers(refusal: Refusal) -> dict[str, str]:
    return {} if refusal.retry_after is None else {"Retry-After": str(refusal.retry_after)}


async def index(request: web.Request) -> web.Response:
    return _upload_page(request)


async def caption_form(request: web.Request) -> web.StreamResponse:
    try:
        request_id, _ = await upload(request, *_parts(request), api=False)
    except Refusal as refusal:
        response = _upload_page(request, error=refusal.message, status=refusal.status)
        response.headers.update(_retry_headers(refusal))
        return response
    raise web.HTTPSeeOther(f"/r/{request_id}")


async def caption_api(request: web.Request) -> web.Response:
    try:
        request_id, position = await upload(request, *_parts(request), api=True)
    except Refusal as refusal:
        return web.json_response({"error": refusal.message}, status=refusal.status, headers=_retry_headers(refusal))
    body = {"request_id": request_id, "queue_position": position, "url": f"/r/{request_id}"}
    body["status_text"] = web_texts.waiting(position)
    return web.json_response(body, status=202)


# -- one request -------------------------------------------------------------------------------

#: Alt text is read out in one go: the page holds the whole text read in the photo below it.
WEB_ALT_TEXT_LIMIT = 1024


def percent(p: float | None) -> int | None:
    return None if p is None else round(100 * p)


def photo_alt(view: RequestView) -> str:
    """The photo's alt text: the answer, then the text read in it (the page shows all of it too)."""
    if not view.answer:
        return web_texts.YOUR_PHOTO_ALT
    alt, _ = texts.with_photo_text(view.answer, view.photo_text, limit=WEB_ALT_TEXT_LIMIT)
    return alt.replace("\n", " ")


def answer_context(view: RequestView) -> dict[str, Any]:
    """What answer.html shows of a request (waiting, answered or failed)."""
    att = view.attention if view.photo_kept else None
    return {
        "view": view,
        "photo_alt": photo_alt(view),
        "photo_text_lines": view.photo_text.splitlines() if view.photo_text else [],
        "photo_text_label": texts.TEXT_LABEL,
        "band_words": web_texts.BAND_WORDS.get(view.band or ""),
        "confidence": percent(view.confidence),
        "percent": percent,
        "words": list(enumerate(att.words)) if att else [],
        "status_text": web_texts.waiting(view.queue_position),
        "max_correction": MAX_CORRECTION_CHARS,
    }


def view_json(view: RequestView) -> dict[str, Any]:
    """The request as app.js reads it."""
    base = f"/r/{view.request_id}"
    att = view.attention if view.photo_kept else None
    return {
        "request_id": view.request_id,
        "url": base,
        "state": view.state,
        "finished": view.finished,
        "queue_position": view.queue_position,
        "status_text": None if view.finished else web_texts.waiting(view.queue_position),
        "answer": view.answer,
        "text": view.text,
        "photo_text": view.photo_text,
        "confidence": view.confidence,
        "band": view.band,
        "band_words": web_texts.BAND_WORDS.get(view.band or ""),
        "labels": [{"label": lab.label, "word": lab.word, "p": lab.p} for lab in view.labels],
        "words": [{"word": w, "image_url": f"{base}/attention/{i}.png"} for i, w in enumerate(att.words)]
        if att
        else [],
        "model_version": view.model_version,
        "failure_message": view.failure_message,
        "rating": view.rating,
        "correction": view.correction,
        "flagged": view.flagged,
        "caption_id": view.caption_id,
        "photo_url": f"{base}/photo" if view.photo_kept else None,
    }


async def own_view(request: web.Request) -> tuple[str, RequestView]:
    """(visitor id, view) of the request in the address, or 404 when it is not this visitor's."""
    visitor = await visitor_id(request, create=False)
    view = None
    if visitor is not None:
        view = await front_end(request).service.request_view(
            request.match_info["request_id"], platform=PLATFORM, platform_user_id=visitor
        )
    if visitor is None or view is None:
        raise web.HTTPNotFound()
    return visitor, view


async def wait_finished(request: web.Request, visitor: str, view: RequestView, within_s: float) -> RequestView:
    """Re-read ``view`` until it is finished or ``within_s`` passed: at once when this process
    delivers the answer, else every RECHECK_S (the answer may be stored by another process, whose
    delivery notice never reaches this one)."""
    fe = front_end(request)
    deadline = asyncio.get_running_loop().time() + within_s
    while not view.finished and (left := deadline - asyncio.get_running_loop().time()) > 0:
        await fe.waiters.wait(view.request_id, min(RECHECK_S, left))
        again = await fe.service.request_view(view.request_id, platform=PLATFORM, platform_user_id=visitor)
        if again is None:  # forgotten meanwhile
            raise web.HTTPNotFound()
        view = again
    return view


async def take_flash(request: web.Request) -> str | None:
    """The one-line confirmation the last POST left for this page."""
    message = (await get_session(request)).pop("flash", None)
    return message if isinstance(message, str) else None


async def flash(request: web.Request, message: str) -> None:
    (await get_session(request))["flash"] = message


async def answer(request: web.Request) -> web.Response:
    visitor, view = await own_view(request)
    view = await wait_finished(request, visitor, view, PAGE_WAIT_S)
    context = answer_context(view) | {"saved": await take_flash(request), "error": None}
    return aiohttp_jinja2.render_template("answer.html", request, context)


async def answer_api(request: web.Request) -> web.Response:
    visitor, view = await own_view(request)
    try:
        wait = float(request.query.get("wait", "0"))
    except ValueError:
        wait = 0.0
    wait = min(max(wait, 0.0), API_WAIT_MAX_S) if math.isfinite(wait) else 0.0
    view = await wait_finished(request, visitor, view, wait)
    return web.json_response(view_json(view))


async def photo(request: web.Request) -> web.Response:
    visitor = await visitor_id(request, create=False)
    found = None
    if visitor is not None:
        found = await front_end(request).service.request_photo(
            request.match_info["request_id"], platform=PLATFORM, platform_user_id=visitor
        )
    if found is None:
        raise web.HTTPNotFound()
    data, mime = found
    return web.Response(body=data, content_type=mime, headers={"Cache-Control": "private, max-age=3600"})


async def attention(request: web.Request) -> web.Response:
    visitor, view = await own_view(request)
    index = int(request.match_info["index"])
    att = view.attention
    if att is None or index >= len(att.words):
        raise web.HTTPNotFound()
    found = await front_end(request).service.request_photo(view.request_id, platform=PLATFORM, platform_user_id=visitor)
    if found is None:
        raise web.HTTPNotFound()
    max_pixels = front_end(request).settings.max_pixels
    try:
        png = await asyncio.to_thread(
            render, found[0], att.maps[index], att.side, max_pixels=max_pixels, key=view.request_id
        )
    except AttentionImageError as exc:
        raise web.HTTPNotFound() from exc
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


# -- feedback ----------------------------------------------------------------------------------


async def feedback(request: web.Request) -> web.StreamResponse:
    """POST /r/{id}/rate, /correct or /flag: store, then back to the answer with a confirmation.
    The caption is the one the visitor's own request got, never an id from the form."""
    if (form := await _checked_form(request)) is None:
        return error_response(request, 403, web_texts.BAD_FORM)
    visitor, view = await own_view(request)
    if view.caption_id is None:
        raise web.HTTPNotFound()
    service, action = front_end(request).service, request.match_info["action"]
    who: dict[str, Any] = {"caption_id": view.caption_id, "platform": PLATFORM, "platform_user_id": visitor}
    try:
        if action == "rate":
            rating = str(form.get("rating", ""))
            if rating not in ("1", "-1"):
                raise InvalidFeedbackError("rating", texts.INVALID_RATING)
            state = await service.rate(rating=int(rating), **who)
            message = texts.rated(state.rating or int(rating))
        elif action == "correct":
            await service.correct(text=str(form.get("correction", "")), **who)
            message = texts.CORRECTION_SAVED
        else:
            flagged = str(form.get("flagged", "true")) != "false"
            await service.flag(flagged=flagged, **who)
            message = web_texts.FLAGGED if flagged else web_texts.UNFLAGGED
    except InvalidFeedbackError as exc:
        context = answer_context(view) | {"saved": None, "error": exc.user_message}
        return aiohttp_jinja2.render_template("answer.html", request, context, status=400)
    except UnknownCaptionError as exc:
        return error_response(request, 404, exc.user_message)
    await flash(request, message)
    raise web.HTTPSeeOther(f"/r/{view.request_id}")


async def _checked_form(request: web.Request) -> MultiDictProxy[Any] | None:
    """The posted form when its CSRF token is right, else None."""
    form = await request.post()
    token = form.get(CSRF_FIELD)
    return form if await check_csrf(request, token if isinstance(token, str) else "") else None


# -- the visitor's own photos and privacy -------------------------------------------------------


async def mine(request: web.Request) -> web.Response:
    return await _mine_page(request)


async def _mine_page(request: web.Request, *, error: str | None = None, status: int = 200) -> web.Response:
    visitor = await visitor_id(request, create=False)
    service = front_end(request).service
    views: list[RequestView] = []
    opted_out = False
    if visitor is not None:
        views = await service.recent_requests(platform=PLATFORM, platform_user_id=visitor)
        opted_out = (await service.stats(platform=PLATFORM, platform_user_id=visitor)).opted_out
    context = {"views": views, "opted_out": opted_out, "saved": await take_flash(request), "error": error}
    context["waiting"] = web_texts.waiting
    return aiohttp_jinja2.render_template("mine.html", request, context, status=status)


async def opt_out(request: web.Request) -> web.StreamResponse:
    if (form := await _checked_form(request)) is None:
        return error_response(request, 403, web_texts.BAD_FORM)
    visitor = await visitor_id(request)
    assert visitor is not None
    wanted = str(form.get("opt_out", "true")) != "false"
    now = await front_end(request).service.set_opt_out(platform=PLATFORM, platform_user_id=visitor, opt_out=wanted)
    await flash(request, web_texts.OPTED_OUT if now else web_texts.OPTED_IN)
    raise web.HTTPSeeOther("/mine")


async def forget(request: web.Request) -> web.StreamResponse:
    if (form := await _checked_form(request)) is None:
        return error_response(request, 403, web_texts.BAD_FORM)
    visitor = await visitor_id(request)
    assert visitor is not None
    if form.get("confirm") != "yes":
        return await _mine_page(request, error=web_texts.FORGET_UNCONFIRMED, status=400)
    report = await front_end(request).service.forget(platform=PLATFORM, platform_user_id=visitor)
    forget_photos()
    message = texts.FORGET_NOTHING
    if report.found:
        message = texts.forgotten(photos=report.images, captions=report.captions, feedback=report.feedback)
    await flash(request, message)
    raise web.HTTPSeeOther("/mine")


async def privacy(request: web.Request) -> web.Response:
    # The bots' privacy text, without its slash commands (the web has buttons instead).
    lines = [line for line in front_end(request).service.privacy_text().splitlines() if not line.startswith("/")]
    return aiohttp_jinja2.render_template("privacy.html", request, {"lines": lines})


def add_routes(app: web.Application) -> None:
    """Register this page's routes on ``app``."""
    app.router.add_get("/", index)
    app.router.add_post("/caption", caption_form)
    app.router.add_post("/api/caption", caption_api)
    app.router.add_get(f"/r/{ID}", answer)
    app.router.add_get(f"/api/r/{ID}", answer_api)
    app.router.add_get(f"/r/{ID}/photo", photo)
    app.router.add_get(f"/r/{ID}/attention/{{index:[0-9]{{1,4}}}}.png", attention)
    app.router.add_post(f"/r/{ID}/{{action:rate|correct|flag}}", feedback)
    app.router.add_get("/mine", mine)
    app.router.add_post("/optout", opt_out)
    app.router.add_post("/forget", forget)
    app.router.add_get("/privacy", privacy)
