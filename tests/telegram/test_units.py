"""The adapter's pure parts: callback data, prompt references, texts, configuration, log redaction."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from bot.telegram import keyboards
from bot.telegram.config import TelegramConfig, api_urls, download_limit
from bot.telegram.keyboards import Correct, Forget, Rate
from bot.telegram.logsafety import RedactSecret, protect
from captionbot import texts

BIG = 2**63 - 1


@pytest.mark.parametrize("action", [Rate(1, 1), Rate(BIG, -1), Correct(BIG), Forget(BIG, True), Forget(7, False)])
def test_callback_data_round_trips_within_64_bytes(action):
    data = keyboards.encode(action)
    assert len(data.encode()) <= 64
    assert keyboards.decode(data) == action


@pytest.mark.parametrize(
    "data",
    [
        None,
        "",
        "r0:1:1",
        "r1:1:0",
        "r1:1:5",
        "r1:01:1",
        "r1:-1:1",
        "c1:",
        "c1:x",
        "f1:7:maybe",
        "r1:1:1:extra",
        "x" * 64,
        "r1:99999999999999999999:1",
    ],
)
def test_unknown_or_malformed_callback_data_decodes_to_none(data):
    assert keyboards.decode(data) is None


def test_keyboard_state_labels():
    private = keyboards.caption_keyboard(5, mine=-1)
    assert [b.text for b in private.inline_keyboard[0]] == [keyboards.LABEL_GOOD, keyboards.LABEL_BAD + " ✓"]
    group = keyboards.caption_keyboard(5, ups=3, downs=0, show_counts=True)
    assert [b.text for b in group.inline_keyboard[0]] == [keyboards.LABEL_GOOD + " · 3", keyboards.LABEL_BAD]
    assert keyboards.thumbs_counts(ratings=4, score=2) == (3, 1)


def test_old_correction_prompts_still_name_their_caption():
    old = "Please send me a better caption as a reply to this message. (Caption no. 42)"
    assert texts.telegram_correction_prompt_ref(old) == 42
    assert (
        texts.telegram_correction_prompt_ref(
            "Zoë, send me a better caption as a reply to this message. (Caption no. 42)"
        )
        == 42
    )
    assert (
        texts.telegram_correction_prompt_ref(texts.telegram_correction_prompt("A red square. (Caption no. 3)")) is None
    )
    assert texts.telegram_correction_prompt_ref("Send me a photo") is None
    assert texts.telegram_correction_prompt_ref(None) is None


def test_caption_text_reads_as_a_sentence():
    assert texts.caption("a dog runs on the grass", 0.9) == "A dog runs on the grass."
    assert texts.caption("  ", 0.9) == texts.EMPTY_CAPTION
    assert texts.caption("a cat", 0.05).endswith(texts.LOW_CONFIDENCE)
    assert texts.queue_status(3) == "You're #3 in the queue. I'll put the description here when it's ready."
    assert texts.queue_status(0, photos=2).startswith("Describing your 2 photos now")


def test_api_urls_and_download_limit():
    assert api_urls("https://api.telegram.org/bot") == (
        "https://api.telegram.org/bot",
        "https://api.telegram.org/file/bot",
    )
    assert api_urls("http://tg-api:8081/") == ("http://tg-api:8081/bot", "http://tg-api:8081/file/bot")
    assert api_urls("http://h/bot{token}") == ("http://h/bot{token}", "http://h/file/bot{token}")
    assert download_limit("https://api.telegram.org/bot", 50 * 2**20) == 20 * 2**20
    assert download_limit("http://tg-api:8081/bot", 50 * 2**20) == 50 * 2**20  # self-hosted lifts 20 MB


class _Settings:
    telegram_bot_token = SecretStr("1:abc")
    telegram_api_base_url = "https://api.telegram.org/bot"
    telegram_use_webhook = True
    telegram_webhook_url = "https://example.com/tg/hook/"
    telegram_webhook_listen = "127.0.0.1"
    telegram_webhook_port = 8443
    telegram_webhook_secret_token = None
    max_image_bytes = 30 * 2**20


def test_config_from_settings_keeps_secrets_out_of_repr():
    config = TelegramConfig.from_settings(_Settings())
    assert config.webhook_path == "tg/hook"
    assert config.max_download_bytes == 20 * 2**20
    assert len(config.webhook_secret) >= 32  # none configured: a random one, so webhook calls are checked
    assert config.webhook_secret != TelegramConfig.from_settings(_Settings()).webhook_secret
    assert "abc" not in repr(config) and config.webhook_secret not in repr(config)


def test_redaction_filter_and_quiet_loggers():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "POST %s/getMe", ("https://h/bot1:abc",), None)
    RedactSecret("1:abc").filter(record)
    assert record.getMessage() == "POST https://h/bot<token>/getMe"
    httpx = logging.getLogger("httpx")
    before = httpx.level
    httpx.setLevel(logging.DEBUG)
    undo = protect("1:abc")
    try:
        assert not httpx.isEnabledFor(logging.INFO)  # httpx logs every URL (with the token) at INFO
    finally:
        undo()
    assert httpx.level == logging.DEBUG
    httpx.setLevel(before)


def test_a_failed_request_is_answered_with_its_message_and_no_buttons():
    from bot.telegram.delivery import render
    from captionbot.service import Delivery

    common = dict(
        request_id="r",
        platform="telegram",
        platform_chat_id="7",
        chat_kind="private",
        platform_user_id="7",
        source_message_id="3",
        status_message_id=None,
        reply_context={},
    )
    failed = Delivery(status="failed", failure_code="bad_image", failure_message="That image seems damaged.", **common)
    assert render(failed) == ("That image seems damaged.", None)
    done = Delivery(status="done", caption_id=9, text="a cat on a sofa", confidence=0.8, **common)
    text, markup = render(done)
    assert text == "A cat on a sofa." and markup.inline_keyboard[1][0].callback_data == "c1:9"


def test_correction_prompts_quote_the_caption_and_name_no_id():
    private = texts.telegram_correction_prompt("A red square.")
    assert private.startswith('The caption was: "A red square."') and "Cancel" in private
    assert "no." not in private.lower().replace("a red square.", "")
    group = texts.telegram_correction_prompt("A red square.", "Zoë")
    assert group.startswith("Zoë, ") and '"A red square."' in group and "cancel" in group
    assert texts.correction_saved("a red square") == 'Thank you! I saved: "a red square".'
    assert "15 minutes" in texts.correction_expired(900) and "a minute" in texts.correction_expired(1)
    assert texts.is_cancel(" Cancel. ") and not texts.is_cancel("cancel that, a cat")


def test_cancel_button_data_round_trips_and_caption_ids_come_from_buttons():
    assert keyboards.decode(keyboards.encode(keyboards.CancelCorrection(7))) == keyboards.CancelCorrection(7)
    assert keyboards.caption_id_of(keyboards.caption_keyboard(5)) == 5
    assert keyboards.caption_id_of(keyboards.cancel_correction_keyboard(7)) is None
    assert keyboards.caption_id_of(None) is None
