"""Webhook mode: setWebhook with a secret token, updates posted to PTB's webhook server, and the
secret checked on every call."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from tests.telegram.conftest import bot_stack, caption_id_of, telegram_settings, wait_caption
from tests.telegram.fake_api import png

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cret-Token_1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_webhook_mode_checks_the_secret_token(fake, tmp_path, backend):
    port = free_port()
    settings = telegram_settings(
        tmp_path,
        backend,
        fake,
        telegram_use_webhook=True,
        telegram_webhook_url="https://bot.example.test/tg/hook",
        telegram_webhook_listen="127.0.0.1",
        telegram_webhook_port=port,
        telegram_webhook_secret_token=SECRET,
    )
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    url = f"http://127.0.0.1:{port}/tg/hook"
    async with bot_stack(settings, via_runtime=True) as _stack:
        assert fake.webhook == {
            "url": "https://bot.example.test/tg/hook",
            "secret_token": SECRET,
            "allowed_updates": ["message", "edited_message", "callback_query"],
        }
        photo = fake.send(chat, ann, photo=png(), deliver=False)
        update = {"update_id": 1, "message": photo}
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with http.post(url, json=update, headers=headers) as response:
                    assert response.status == 403
            async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
                assert response.status == 200
        reply = await wait_caption(fake, photo)
        assert caption_id_of(reply)
        assert not fake.calls_of("getUpdates")
        assert len(fake.replies_to(chat["id"], photo["message_id"])) == 1  # the refused posts did nothing
