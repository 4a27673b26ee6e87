"""The public page over the real pipeline (tiny model): send a photo with the plain form or the
script's JSON API, read the answer, rate, correct and report it; limits, refusals, privacy."""

from __future__ import annotations

import html
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from markupsafe import escape
from PIL import Image

from captionbot import texts
from captionbot.texts import web as web_texts
from tests.gated_engine import BatchGate
from tests.tiny_model import Backend, make_settings, png_bytes
from tests.web.conftest import WebRig, open_web

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
UPLOAD_KEY = re.compile(r'name="upload_key" value="([^"]+)"')
SMALL_LIMIT = 4096


def esc(text: str) -> str:
    """``text`` as the templates write it (Jinja2's autoescape)."""
    return str(escape(text))


@pytest.fixture
async def small_web(tmp_path: Path) -> AsyncIterator[WebRig]:
    """The embedded default with a 4 KB photo limit and 3 uploads per address at once."""
    from captionbot.storage.db import upgrade_async

    url = f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"
    await upgrade_async(url)
    async for rig in open_web(
        tmp_path, Backend(url, "memory://"), max_image_bytes=SMALL_LIMIT, web_uploads_per_minute=3
    ):
        yield rig


@pytest.fixture
async def gated_web(tmp_path: Path) -> AsyncIterator[tuple[WebRig, BatchGate]]:
    """The embedded default whose worker holds every batch until the test opens the gate."""
    from bot.web.app import WebFrontEnd
    from captionbot.storage.db import upgrade_async
    from captionbot_cli.runtime import Stack

    url = f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"
    await upgrade_async(url)
    settings = make_settings(tmp_path, Backend(url, "memory://"), web_port=0)
    gate, made = BatchGate(), {}

    def add_front_end(stack: Any) -> None:
        made["fe"] = WebFrontEnd(settings, stack.service)

    stack = await Stack.open(
        settings, "all", adapters=False, before_start=add_front_end, engine_loader=gate.engine_loader
    )
    gate.arm()
    client = TestClient(TestServer(made["fe"].build_app()))
    await client.start_server()
    try:
        yield WebRig(stack, made["fe"], client, settings), gate
    finally:
        gate.open()
        await client.close()
        await stack.close(grace=10)


async def tokens(client: TestClient) -> tuple[str, str]:
    """(CSRF token, upload key) from the upload page, as a browser gets them."""
    page = await (await client.get("/")).text()
    csrf, key = CSRF.search(page), UPLOAD_KEY.search(page)
    assert csrf and key
    return html.unescape(csrf[1]), html.unescape(key[1])


def upload_form(csrf: str, key: str, photo: bytes | None, content_type: str = "image/png") -> FormData:
    form = FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("upload_key", key)
    if photo is not None:
        form.add_field("photo", photo, filename="holiday.png", content_type=content_type)
    return form


async def send(
    client: TestClient, photo: bytes | None = None, *, csrf: str | None = None, key: str | None = None
) -> Any:
    """POST /caption like the plain form (no redirects followed)."""
    real_csrf, fresh_key = await tokens(client)
    form = upload_form(csrf if csrf is not None else real_csrf, key or fresh_key, photo)
    return await client.post("/caption", data=form, allow_redirects=False)


async def sent(client: TestClient, photo: bytes | None = None) -> str:
    """Send a photo with the form; its request id."""
    response = await send(client, photo if photo is not None else png_bytes())
    assert response.status == 303, await response.text()
    match = re.fullmatch(r"/r/([0-9a-f]{32})", response.headers["Location"])
    assert match
    return match[1]


async def finished(client: TestClient, request_id: str) -> dict[str, Any]:
    """The request as JSON once it is finished (long-polls; the server holds each call)."""
    for _ in range(6):
        response = await client.get(f"/api/r/{request_id}?wait=20")
        assert response.status == 200
        view = await response.json()
        if view["finished"]:
            return view
    raise AssertionError("the request was never finished")


async def csrf_post(client: TestClient, path: str, **fields: str) -> Any:
    csrf, _ = await tokens(client)
    return await client.post(path, data={"csrf_token": csrf, **fields}, allow_redirects=False)


async def test_upload_page_has_a_labelled_file_input_a_token_and_the_privacy_link(web_sqlite: WebRig) -> None:
    page = await (await web_sqlite.client.get("/")).text()
    assert '<label for="photo">' in page and 'id="photo" name="photo" accept="image/*"' in page
    assert 'enctype="multipart/form-data"' in page and 'action="/caption"' in page
    assert "Photos up to 20 MB" in page and 'href="/privacy"' in page
    assert page.count("<h1") == 1 and 'src="/static/app.js"' in page
    assert UPLOAD_KEY.search(page)[1] != UPLOAD_KEY.search(await (await web_sqlite.client.get("/")).text())[1]  # type: ignore[index]


async def test_plain_form_upload_answers_with_the_caption_as_the_photos_alt_text(web_sqlite: WebRig) -> None:
    client, photo = web_sqlite.client, png_bytes("blue", (32, 24))
    request_id = await sent(client, photo)
    view = await finished(client, request_id)
    assert view["state"] == "done" and view["answer"]
    page = await client.get(f"/r/{request_id}")
    body = await page.text()
    assert page.status == 200
    assert f'alt="{esc(view["answer"])}"' in body
    assert f'<p class="caption" id="caption" tabindex="-1">{esc(view["answer"])}</p>' in body
    assert 'role="status"' in body and view["model_version"] in body
    assert "refresh" not in body  # finished: no waiting page
    photo_response = await client.get(f"/r/{request_id}/photo")
    assert await photo_response.read() == photo
    assert photo_response.headers["Cache-Control"] == "private, max-age=3600"
    assert view["words"], "the tiny model stores attention for every word"
    first = view["words"][0]
    assert f'alt="Where the model looked for the word “{esc(first["word"])}”"' in body
    png = await client.get(first["image_url"])
    assert png.status == 200 and png.content_type == "image/png"
    with Image.open(io.BytesIO(await png.read())) as drawn:
        assert (drawn.format, drawn.size) == ("PNG", (224, 168))  # 32x24 scaled to a 224 px longer side
    assert (await client.get(f"/r/{request_id}/attention/{len(view['words'])}.png")).status == 404


async def test_while_the_photo_waits_the_page_says_where_it_stands_and_refreshes_itself(
    gated_web: tuple[WebRig, BatchGate], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.web import public

    monkeypatch.setattr(public, "PAGE_WAIT_S", 0.2)  # the server's own wait before it shows the waiting page
    rig, gate = gated_web
    client = rig.client
    request_id = await sent(client)
    waiting = await (await client.get(f"/api/r/{request_id}?wait=0")).json()
    assert waiting["finished"] is False and waiting["state"] in ("queued", "working")
    assert waiting["status_text"] == web_texts.waiting(waiting["queue_position"])
    page = await client.get(f"/r/{request_id}")
    body = await page.text()
    assert page.status == 200
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in body
    assert '<div class="progress" role="status"' in body and 'class="spinner"' in body
    assert esc(web_texts.waiting(waiting["queue_position"])) in body
    assert (await csrf_post(client, f"/r/{request_id}/rate", rating="1")).status == 404  # nothing to rate yet
    assert (await client.get(f"/r/{request_id}/attention/0.png")).status == 404

    gate.open()
    assert (await finished(client, request_id))["state"] == "done"
    body = await (await client.get(f"/r/{request_id}")).text()
    assert "refresh" not in body and 'class="caption"' in body


async def test_rating_correction_and_report_are_stored_and_confirmed(web_sqlite: WebRig) -> None:
    client = web_sqlite.client
    request_id = await sent(client)
    await finished(client, request_id)
    url = f"/r/{request_id}"

    response = await csrf_post(client, f"{url}/rate", rating="1")
    assert (response.status, response.headers["Location"]) == (303, url)
    page = await (await client.get(url)).text()
    assert texts.rated(1) in page and 'value="1" aria-pressed="true"' in page
    assert texts.rated(1) not in await (await client.get(url)).text()  # the confirmation is shown once

    assert (await csrf_post(client, f"{url}/correct", correction="  a  blue   square ")).status == 303
    page = await (await client.get(url)).text()
    assert texts.CORRECTION_SAVED in page and ">a blue square</textarea>" in page

    assert (await csrf_post(client, f"{url}/flag", flagged="true")).status == 303
    assert web_texts.FLAGGED in await (await client.get(url)).text()

    view = await finished(client, request_id)
    assert (view["rating"], view["correction"], view["flagged"]) == (1, "a blue square", True)

    bad = await csrf_post(client, f"{url}/rate", rating="7")
    assert bad.status == 400 and texts.INVALID_RATING in await bad.text()
    empty = await csrf_post(client, f"{url}/correct", correction="   ")
    assert empty.status == 400 and esc(texts.EMPTY_CORRECTION) in await empty.text()
    assert (await finished(client, request_id))["rating"] == 1


async def test_another_visitor_can_see_nothing_of_a_request_and_change_nothing(web_sqlite: WebRig) -> None:
    request_id = await sent(web_sqlite.client)
    await finished(web_sqlite.client, request_id)
    other = await web_sqlite.new_client()
    await tokens(other)  # a visitor of their own
    for path in ("", "/photo", "/attention/0.png"):
        response = await other.get(f"/r/{request_id}{path}")
        assert response.status == 404, path
    api = await other.get(f"/api/r/{request_id}")
    assert api.status == 404 and (await api.json())["error"] == web_texts.NOT_FOUND
    assert (await csrf_post(other, f"/r/{request_id}/rate", rating="-1")).status == 404
    assert (await csrf_post(other, f"/r/{request_id}/flag", flagged="true")).status == 404
    view = await finished(web_sqlite.client, request_id)
    assert view["rating"] is None and view["flagged"] is False


async def test_posts_without_the_token_are_refused_and_store_nothing(web_sqlite: WebRig) -> None:
    client = web_sqlite.client
    response = await send(client, png_bytes(), csrf="forged")
    body = await response.text()
    assert response.status == 403 and web_texts.BAD_FORM in body and 'role="alert"' in body
    api = await client.post("/api/caption", data=upload_form("", "k" * 16, png_bytes()))
    assert api.status == 403 and (await api.json())["error"] == web_texts.BAD_FORM
    assert "You have not sent any photos" in await (await client.get("/mine")).text()

    request_id = await sent(client)
    await finished(client, request_id)
    forged = await client.post(f"/r/{request_id}/rate", data={"csrf_token": "forged", "rating": "1"})
    assert forged.status == 403
    assert (await client.post("/forget", data={"confirm": "yes"})).status == 403
    assert (await finished(client, request_id))["rating"] is None


async def test_what_is_not_a_photo_gets_a_friendly_page(web_sqlite: WebRig) -> None:
    from captionbot.images.errors import CorruptImageError, NotAnImageError

    client = web_sqlite.client
    cases = [
        (b"just some words, no picture", NotAnImageError.default_user_message),
        (png_bytes(size=(64, 64))[:60], CorruptImageError.default_user_message),  # a truncated PNG
        (None, web_texts.NO_FILE),
        (b"", web_texts.NO_FILE),
    ]
    for data, message in cases:
        response = await send(client, data)
        body = await response.text()
        assert response.status == 400, message
        assert f'<p class="error" role="alert">{esc(message)}</p>' in body
        assert 'name="photo"' in body and "Traceback" not in body
    not_multipart = await csrf_post(client, "/caption")
    assert not_multipart.status == 400 and esc(web_texts.NO_FILE) in await not_multipart.text()
    assert "You have not sent any photos" in await (await client.get("/mine")).text()


async def test_a_photo_over_the_limit_gets_a_friendly_413_page(small_web: WebRig) -> None:
    response = await send(small_web.client, b"\x89PNG" + bytes(SMALL_LIMIT))
    body = await response.text()
    assert response.status == 413
    assert esc(web_texts.too_large(SMALL_LIMIT)) in body and "4 KB" in body
    api = await small_web.client.post(
        "/api/caption",
        data=upload_form("", "k" * 16, bytes(SMALL_LIMIT + 1)),
        headers={"X-CSRF-Token": (await tokens(small_web.client))[0]},
    )
    assert api.status == 413 and (await api.json())["error"] == web_texts.too_large(SMALL_LIMIT)


async def test_a_flood_is_refused_with_a_retry_time_and_every_accepted_photo_is_answered(small_web: WebRig) -> None:
    client = small_web.client
    accepted = [await sent(client, png_bytes(colour)) for colour in ("red", "green", "blue")]
    refused = await send(client, png_bytes("white"))
    body = await refused.text()
    retry = int(refused.headers["Retry-After"])
    assert refused.status == 429 and retry >= 1
    assert esc(texts.rate_limited(retry)) in body and 'role="alert"' in body
    assert len(set(accepted)) == 3
    for request_id in accepted:
        assert (await finished(client, request_id))["state"] == "done"


async def test_sending_the_same_form_again_does_not_caption_twice(web_sqlite: WebRig) -> None:
    client = web_sqlite.client
    csrf, key = await tokens(client)
    first = await client.post("/caption", data=upload_form(csrf, key, png_bytes()), allow_redirects=False)
    again = await client.post("/caption", data=upload_form(csrf, key, png_bytes()), allow_redirects=False)
    assert first.status == again.status == 303
    assert first.headers["Location"] == again.headers["Location"]
    await finished(client, first.headers["Location"].rsplit("/", 1)[1])
    assert (await (await client.get("/mine")).text()).count('href="/r/') == 1


async def test_forgetting_deletes_everything_and_the_old_pages_are_gone(web_sqlite: WebRig) -> None:
    client = web_sqlite.client
    request_id = await sent(client)
    await finished(client, request_id)
    unconfirmed = await csrf_post(client, "/forget")
    assert unconfirmed.status == 400 and web_texts.FORGET_UNCONFIRMED in await unconfirmed.text()
    assert (await client.get(f"/r/{request_id}")).status == 200

    response = await csrf_post(client, "/forget", confirm="yes")
    assert (response.status, response.headers["Location"]) == (303, "/mine")
    page = await (await client.get("/mine")).text()
    assert texts.forgotten(photos=1, captions=1, feedback=0) in page
    assert "You have not sent any photos" in page
    for path in ("", "/photo", "/attention/0.png"):
        assert (await client.get(f"/r/{request_id}{path}")).status == 404, path


async def test_opting_out_of_training_and_back_in(web_sqlite: WebRig) -> None:
    client = web_sqlite.client
    assert "Stop using my photos for training" in await (await client.get("/mine")).text()
    assert (await csrf_post(client, "/optout", opt_out="true")).status == 303
    page = await (await client.get("/mine")).text()
    assert esc(web_texts.OPTED_OUT) in page and "<strong>not</strong> used for training" in page
    assert 'name="opt_out" value="false"' in page and "Use my photos for training again" in page
    assert (await csrf_post(client, "/optout", opt_out="false")).status == 303
    page = await (await client.get("/mine")).text()
    assert web_texts.OPTED_IN in page and "Stop using my photos for training" in page


async def test_privacy_page_speaks_of_buttons_and_the_one_cookie(web_sqlite: WebRig) -> None:
    page = await (await web_sqlite.client.get("/privacy")).text()
    assert "/optout" not in page and "/forget" not in page
    assert esc(web_texts.PRIVACY_COOKIE) in page and 'href="/mine"' in page


async def test_json_api_takes_a_photo_and_long_polls_until_the_caption(web: WebRig) -> None:
    client = web.client
    csrf, key = await tokens(client)
    response = await client.post(
        "/api/caption", data=upload_form("", key, png_bytes("green")), headers={"X-CSRF-Token": csrf}
    )
    assert response.status == 202
    taken = await response.json()
    assert taken["url"] == f"/r/{taken['request_id']}" and taken["queue_position"] >= 0
    view = await finished(client, taken["request_id"])
    assert view["state"] == "done" and view["answer"] and view["text"] and view["caption_id"]
    assert view["photo_url"] == f"{taken['url']}/photo" and view["failure_message"] is None
    assert [w["image_url"] for w in view["words"]][:1] == [f"{taken['url']}/attention/0.png"]
    assert (await client.get(view["words"][0]["image_url"])).status == 200
