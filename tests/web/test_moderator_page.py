"""The moderator's page over the real pipeline: signing in (limited, CSRF rotated, 12 hours), judging
corrections one by one and in bulk, clearing reports, promoting and rolling back model versions,
and the page being off without a password."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.tiny_model import make_tiny_checkpoint, png_bytes
from tests.web.conftest import MODERATOR_PASSWORD, WebRig, open_web

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]


# -- helpers --------------------------------------------------------------------------------------------


def token_in(body: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', body)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def page_token(client: TestClient, path: str = "/moderate/login") -> str:
    return token_in(await (await client.get(path)).text())


async def sign_in(client: TestClient) -> str:
    """Sign in; returns the CSRF token of the signed-in session."""
    token = await page_token(client)
    response = await client.post(
        "/moderate/login", data={"csrf_token": token, "password": MODERATOR_PASSWORD}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/moderate"
    return await page_token(client, "/moderate")


async def post(client: TestClient, path: str, data: Any) -> Any:
    return await client.post(path, data=data, allow_redirects=False)


async def captioned(rig: WebRig, person: str, colour: str) -> int:
    """``person`` sends a photo through the web page's platform; returns the caption id once the
    worker has answered (woken by the front end's delivery handler, re-read from storage)."""
    service = rig.stack.service
    out = await service.submit(
        platform="web",
        platform_chat_id=person,
        chat_kind="private",
        platform_user_id=person,
        display_name=None,
        image_bytes=png_bytes(colour),
        source_message_id=None,
    )
    for _ in range(20):
        view = await service.request_view(out.request_id, platform="web", platform_user_id=person)
        assert view is not None and view.state in ("queued", "working", "done")
        if view.state == "done":
            assert view.caption_id is not None
            return int(view.caption_id)
        await rig.front_end.waiters.wait(out.request_id, 1.0)
    raise AssertionError("no caption within 20 s")


async def corrected(rig: WebRig, n: int) -> list[int]:
    """``n`` people each correct the caption of their own photo; returns the caption ids."""
    ids = []
    for i in range(n):
        person = f"person-{i}"
        cid = await captioned(rig, person, COLOURS[i])
        await rig.stack.service.correct(
            caption_id=cid, platform="web", platform_user_id=person, text=f"a plain {COLOURS[i]} square number {i}"
        )
        ids.append(cid)
    return ids


async def waiting(rig: WebRig) -> list[Any]:
    return list(await rig.front_end.moderation.corrections_to_review())


async def reviews(rig: WebRig) -> dict[str, str | None]:
    """Correction text -> review verdict, for every usable correction."""
    items = await rig.front_end.moderation.usable_feedback()
    return {i.correction: i.review for i in items if i.correction}


async def register(rig: WebRig, tmp_path: Path, name: str, *, promote: bool = False, **metrics: Any) -> Path:
    """A model version over a real checkpoint file (so promote's file check passes)."""
    from captionbot.storage import model_versions

    path = make_tiny_checkpoint(tmp_path / "models" / f"{name}.pt")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    async with rig.stack.session_factory.begin() as s:
        v = await model_versions.register_model_version(s, name=name, path=str(path), sha256=sha, metrics=metrics)
        if promote:
            await model_versions.promote_model_version(s, model_version_id=v.id)
    return path


def status_line(body: str) -> str:
    found = re.search(r'role="status">([^<]*)<', body)
    assert found, "no status line"
    return found.group(1)


# -- signing in --------------------------------------------------------------------------------------


async def test_pages_need_a_signed_in_moderator(web_sqlite: WebRig) -> None:
    client = web_sqlite.client
    for path in ("/moderate", "/moderate/models", "/moderate/photo/" + "a" * 64):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/moderate/login"
    token = await page_token(client)
    response = await post(client, "/moderate/review", {"csrf_token": token, "feedback_id": "1", "verdict": "approve"})
    assert response.status == 401
    form = await (await client.get("/moderate/login")).text()
    assert '<label for="password">' in form and 'type="password"' in form and form.count("<h1>") == 1


async def test_wrong_password_is_refused_and_signs_nobody_in(web_sqlite: WebRig) -> None:
    client = web_sqlite.client
    token = await page_token(client)
    response = await post(client, "/moderate/login", {"csrf_token": token, "password": "guess"})
    assert response.status == 401
    body = await response.text()
    assert "That password is not right." in body and 'name="password"' in body
    assert (await client.get("/moderate", allow_redirects=False)).status == 303
    # A sign-in without the form's token is refused before the password is even looked at.
    response = await post(client, "/moderate/login", {"password": MODERATOR_PASSWORD})
    assert response.status == 403
    assert (await client.get("/moderate", allow_redirects=False)).status == 303


async def test_too_many_sign_in_attempts_wait(web_sqlite: WebRig) -> None:
    client = web_sqlite.client
    token = await page_token(client)
    for _ in range(5):
        assert (await post(client, "/moderate/login", {"csrf_token": token, "password": "guess"})).status == 401
    response = await post(client, "/moderate/login", {"csrf_token": token, "password": MODERATOR_PASSWORD})
    assert response.status == 429 and int(response.headers["Retry-After"]) > 0
    assert "Too many sign-in attempts" in await response.text()
    assert (await client.get("/moderate", allow_redirects=False)).status == 303


async def test_csrf_token_from_before_sign_in_is_useless_after(web_sqlite: WebRig) -> None:
    await corrected(web_sqlite, 1)
    client = web_sqlite.client
    before = await page_token(client)
    after = await sign_in(client)
    assert after != before
    response = await post(client, "/moderate/review", {"csrf_token": before, "feedback_id": "1", "verdict": "reject"})
    assert response.status == 403
    assert len(await waiting(web_sqlite)) == 1


async def test_sign_out_and_sessions_expire(web_sqlite: WebRig, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.web import moderation

    client = web_sqlite.client
    token = await sign_in(client)
    response = await post(client, "/moderate/logout", {"csrf_token": token})
    assert response.status == 303 and response.headers["Location"] == "/moderate/login"
    assert "You are signed out." in await (await client.get("/moderate/login")).text()
    assert (await client.get("/moderate", allow_redirects=False)).status == 303

    await sign_in(client)
    monkeypatch.setattr(moderation, "SIGN_IN_FOR_S", 0)  # as if 12 hours had passed
    assert (await client.get("/moderate", allow_redirects=False)).status == 303


async def test_page_is_off_without_a_password(tmp_path: Path) -> None:
    from captionbot.storage.db import upgrade_async
    from tests.tiny_model import Backend

    url = f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"
    await upgrade_async(url)
    rigs: AsyncIterator[WebRig] = open_web(tmp_path, Backend(url, "memory://"), web_moderator_password=None)
    rig = await anext(rigs)
    try:
        client = rig.client
        for path in ("/moderate", "/moderate/login", "/moderate/models", "/moderate/anything"):
            response = await client.get(path, allow_redirects=False)
            assert response.status == 404
            body = await response.text()
            assert "off" in body and "CAPTIONBOT_WEB_MODERATOR_PASSWORD" in body
        response = await post(client, "/moderate/login", {"password": MODERATOR_PASSWORD})
        assert response.status == 404 and "CAPTIONBOT_WEB_MODERATOR_PASSWORD" in await response.text()
        assert 'href="/moderate"' not in await (await client.get("/moderate/login")).text()
    finally:
        await rigs.aclose()


# -- corrections and reports ---------------------------------------------------------------------------


async def test_moderator_sees_corrections_reports_and_people(web: WebRig) -> None:
    caption_ids = await corrected(web, 2)
    service = web.stack.service
    await service.rate(caption_id=caption_ids[0], platform="web", platform_user_id="person-0", rating=-1)
    for reporter in ("person-1", "reporter"):
        await service.flag(caption_id=caption_ids[0], platform="web", platform_user_id=reporter)
    await sign_in(web.client)

    body = await (await web.client.get("/moderate")).text()
    items = await waiting(web)
    assert len(items) == 2
    for item in items:
        assert f'<img class="thumb" src="/moderate/photo/{item.image_sha256}" alt="{item.caption_text}"' in body
        assert item.correction in body and f"Person {item.person}" in body
        assert f'<label for="pick-{item.feedback_id}" class="visually-hidden">Select correction' in body
    assert "Approval is not required" in body
    assert "Reported captions (1)" in body and "<td>2</td>" in body  # two reports of one caption
    assert "<caption>Feedback per person" in body and 'scope="col">Opted out<' in body
    assert body.count("<h1>") == 1

    photo = await web.client.get(f"/moderate/photo/{items[0].image_sha256}")
    assert photo.status == 200 and photo.content_type == "image/png"
    assert (await web.client.get("/moderate/photo/not-a-digest")).status == 404
    assert (await web.client.get("/moderate/photo/" + "0" * 64)).status == 404


async def test_approve_reject_and_bulk(web_sqlite: WebRig) -> None:
    await corrected(web_sqlite, 4)
    client = web_sqlite.client
    token = await sign_in(client)
    first, second, third, fourth = await waiting(web_sqlite)

    response = await post(
        client, "/moderate/review", {"csrf_token": token, "feedback_id": first.feedback_id, "verdict": "approve"}
    )
    assert response.status == 303 and response.headers["Location"] == "/moderate"
    assert status_line(await (await client.get("/moderate")).text()) == "Approved 1 correction."
    await post(
        client, "/moderate/review", {"csrf_token": token, "feedback_id": second.feedback_id, "verdict": "reject"}
    )
    bulk = [("csrf_token", token), ("feedback_id", str(third.feedback_id)), ("feedback_id", str(fourth.feedback_id))]
    await post(client, "/moderate/review", [*bulk, ("verdict", "approve")])
    assert status_line(await (await client.get("/moderate")).text()) == "Approved 2 corrections."

    assert await waiting(web_sqlite) == []
    verdicts = await reviews(web_sqlite)
    assert verdicts[first.correction] == verdicts[third.correction] == verdicts[fourth.correction] == "approved"
    assert verdicts[second.correction] == "rejected"
    assert "No corrections are waiting." in await (await client.get("/moderate")).text()


async def test_changes_without_the_csrf_token_are_refused(web_sqlite: WebRig) -> None:
    caption_ids = await corrected(web_sqlite, 1)
    await web_sqlite.stack.service.flag(caption_id=caption_ids[0], platform="web", platform_user_id="person-0")
    client = web_sqlite.client
    await sign_in(client)
    (item,) = await waiting(web_sqlite)
    for token in ({}, {"csrf_token": "forged"}):
        review = {"feedback_id": item.feedback_id, "verdict": "reject"} | token
        assert (await post(client, "/moderate/review", review)).status == 403
        assert (await post(client, "/moderate/flags/clear", {"caption_id": caption_ids[0]} | token)).status == 403
        assert (await post(client, "/moderate/logout", token)).status == 403
    assert len(await waiting(web_sqlite)) == 1
    assert len(await web_sqlite.front_end.moderation.flagged()) == 1
    assert (await client.get("/moderate", allow_redirects=False)).status == 200  # still signed in


async def test_clear_reports(web_sqlite: WebRig) -> None:
    service = web_sqlite.stack.service
    caption_ids = [await captioned(web_sqlite, f"sender-{i}", COLOURS[i]) for i in range(3)]
    for cid in caption_ids:
        await service.flag(caption_id=cid, platform="web", platform_user_id="reporter")
    client = web_sqlite.client
    token = await sign_in(client)
    await post(client, "/moderate/flags/clear", {"csrf_token": token, "caption_id": caption_ids[0]})
    assert status_line(await (await client.get("/moderate")).text()) == "Cleared 1 report."
    bulk = [("csrf_token", token)] + [("caption_id", str(c)) for c in caption_ids[1:]]
    await post(client, "/moderate/flags/clear", bulk)
    body = await (await client.get("/moderate")).text()
    assert status_line(body) == "Cleared 2 reports." and "No captions are reported." in body
    assert await web_sqlite.front_end.moderation.flagged() == []


# -- model versions ------------------------------------------------------------------------------------


async def test_promote_and_roll_back(web_sqlite: WebRig, tmp_path: Path) -> None:
    await register(web_sqlite, tmp_path, "base-v1", promote=True)
    await register(web_sqlite, tmp_path, "learned-r1", after={"fixed CIDEr-D": 0.4321, "slice CIDEr-D": 0.9})
    client = web_sqlite.client
    token = await sign_in(client)
    body = await (await client.get("/moderate/models")).text()
    assert "Promoted (serving now)" in body and "fixed CIDEr-D 0.432" in body
    assert 'name="name" value="learned-r1"' in body and 'name="name" value="base-v1"' not in body

    response = await post(client, "/moderate/models/promote", {"csrf_token": token, "name": "learned-r1"})
    assert response.status == 303 and response.headers["Location"] == "/moderate/models"
    assert "Promoted learned-r1" in status_line(await (await client.get("/moderate/models")).text())
    promoted = await web_sqlite.front_end.moderation.promoted_model()
    assert promoted is not None and promoted.name == "learned-r1"

    await post(client, "/moderate/models/rollback", {"csrf_token": token})
    line = status_line(await (await client.get("/moderate/models")).text())
    assert line.startswith("Rolled back from learned-r1 to base-v1")
    promoted = await web_sqlite.front_end.moderation.promoted_model()
    assert promoted is not None and promoted.name == "base-v1"

    for _ in range(3):  # back past the version the stack registered at start, to the first one
        await post(client, "/moderate/models/rollback", {"csrf_token": token})
        line = status_line(await (await client.get("/moderate/models")).text())
        if not line.startswith("Rolled back"):
            break
    assert line.startswith("Nothing to roll back: no model version was promoted before") and "\n" not in line


async def test_promoting_a_version_whose_file_is_gone_says_why(web_sqlite: WebRig, tmp_path: Path) -> None:
    await register(web_sqlite, tmp_path, "base-v1", promote=True)
    (await register(web_sqlite, tmp_path, "gone-r2")).unlink()
    client = web_sqlite.client
    token = await sign_in(client)
    await post(client, "/moderate/models/promote", {"csrf_token": token, "name": "gone-r2"})
    body = await (await client.get("/moderate/models")).text()
    assert status_line(body) == "Not promoted: gone-r2: its checkpoint file is missing."
    assert 'class="error" role="status"' in body
    promoted = await web_sqlite.front_end.moderation.promoted_model()
    assert promoted is not None and promoted.name == "base-v1"


async def test_rating_plot_and_its_table(web_sqlite: WebRig) -> None:
    client = web_sqlite.client
    await sign_in(client)
    assert "There are no ratings yet" in await (await client.get("/moderate/models")).text()
    cid = await captioned(web_sqlite, "rater", "red")
    await web_sqlite.stack.service.rate(caption_id=cid, platform="web", platform_user_id="rater", rating=1)
    body = await (await client.get("/moderate/models")).text()
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in body and 'role="img"' in body
    assert "<caption>Mean rating per day and version" in body and "<td>+1.00</td>" in body
