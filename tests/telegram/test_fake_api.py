"""The fake Bot API server itself: request encodings, errors, long polling."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.telegram.fake_api import FakeTelegram

pytestmark = pytest.mark.timeout(30)


async def test_form_multipart_and_json_bodies_are_understood(fake: FakeTelegram):
    chat = fake.private_chat(fake.user(7))
    api = f"{fake.base_url}{fake.token}"
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "r1:1:1"}]]}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{api}/sendMessage", data={"chat_id": "7", "text": "form", "reply_markup": json.dumps(markup)}
        ) as r:
            assert (await r.json())["result"]["reply_markup"] == markup
        form = aiohttp.FormData()
        form.add_field("chat_id", "7")
        form.add_field("text", "multipart")
        form.add_field("document", b"\x89PNG...", filename="a.png", content_type="image/png")
        async with http.post(f"{api}/sendMessage", data=form) as r:
            assert (await r.json())["result"]["text"] == "multipart"
        async with http.post(f"{api}/sendMessage", json={"chat_id": 7, "text": "json"}) as r:
            assert (await r.json())["ok"]
        async with http.post(f"{api}/getMe") as r:
            assert (await r.json())["result"]["username"] == "CaptionTestBot"
        async with http.post(f"{fake.base_url}0:wrong/getMe") as r:
            assert r.status == 401
        async with http.post(f"{api}/noSuchMethod") as r:
            assert r.status == 404 and (await r.json())["description"] == "Not Found"
        async with http.post(
            f"{api}/sendMessage", data={"chat_id": "7", "text": "x", "reply_parameters": '{"message_id": 999}'}
        ) as r:
            assert (await r.json())["description"] == "Bad Request: message to be replied not found"
    assert [c.content_type for c in fake.calls_of("sendMessage")][:3] == [
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/json",
    ]
    assert [m["text"] for m in fake.bot_messages(chat["id"])] == ["form", "multipart", "json"]


async def test_long_polling_returns_as_soon_as_an_update_arrives(fake: FakeTelegram):
    api = f"{fake.base_url}{fake.token}"
    async with aiohttp.ClientSession() as http:
        poll = asyncio.ensure_future(http.post(f"{api}/getUpdates", data={"timeout": "20"}))
        await fake.wait_call("getUpdates")
        update_id = fake.inject({"message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}})
        async with asyncio.timeout(5):  # far less than the 20 s poll timeout
            response = await poll
        assert [u["update_id"] for u in (await response.json())["result"]] == [update_id]
        response.release()
        async with http.post(f"{api}/getUpdates", data={"offset": str(update_id + 1)}) as r:
            assert (await r.json())["result"] == []  # confirmed by the offset
