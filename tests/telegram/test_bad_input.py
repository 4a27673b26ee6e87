"""Bad input and bad luck: wrong files, damaged or huge images, floods, stale or foreign buttons,
Telegram's 429, a user who blocked the bot, a failing handler. Each gets a short answer; nothing
crashes; every callback query is answered."""

from __future__ import annotations

import pytest

from captionbot.storage.models import RequestStatus
from tests.telegram.conftest import bot_stack, caption_id_of, requests, telegram_settings, wait_answer, wait_caption
from tests.telegram.fake_api import png
from tests.tiny_model import until

pytestmark = pytest.mark.timeout(60)

MB = 1024 * 1024


async def test_wrong_damaged_and_oversized_files_get_a_clear_answer(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        pdf = fake.send(
            chat, ann, document=b"%PDF-1.7 not an image", mime_type="application/pdf", file_name="report.pdf"
        )
        assert "isn't an image" in (await fake.wait_reply(chat["id"], pdf["message_id"]))["text"]

        damaged = png()[:60]  # a PNG cut short
        broken = fake.send(chat, ann, document=damaged, mime_type="image/png", file_name="cut.png")
        text = (await fake.wait_reply(chat["id"], broken["message_id"]))["text"]
        assert "damaged" in text or "couldn't read" in text or "isn't an image" in text

        # Over the public Bot API's 20 MB: refused from file_size alone, nothing downloaded.
        huge_photo = fake.send(chat, ann, photo=png(), photo_size=25 * MB)
        huge_file = fake.send(chat, ann, document=png(), document_size=21 * MB)
        for message in (huge_photo, huge_file):
            reply = await fake.wait_reply(chat["id"], message["message_id"])
            assert reply["text"] == "That file is too big. Please send an image under 20 MB."
        asked = {c.params["file_id"] for c in fake.calls_of("getFile")}
        assert huge_photo["photo"][-1]["file_id"] not in asked and huge_file["document"]["file_id"] not in asked
        # No file_size in the update: getFile itself refuses ("file is too big"), same answer.
        unsized = fake.send(chat, ann, document=png(), document_size=22 * MB, report_size=False)
        reply = await fake.wait_reply(chat["id"], unsized["message_id"])
        assert reply["text"] == "That file is too big. Please send an image under 20 MB."
        assert fake.calls_of("getFile", file_id=unsized["document"]["file_id"])

        sticker = fake.send(chat, ann, text="\N{GRINNING FACE}")
        assert "Send me a photo" in (await _next(fake, sticker))["text"]
        assert len(await requests(stack)) == 0  # nothing bad reached the queue


async def test_a_self_hosted_bot_api_server_lifts_the_20_mb_limit(fake, tmp_path, backend):
    fake.file_limit = None  # like a local Bot API server
    settings = telegram_settings(tmp_path, backend, fake, max_image_bytes=30 * MB)
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as _stack:
        big = fake.send(chat, ann, photo=png(), photo_size=25 * MB)  # (the bytes are small; the size is claimed)
        await wait_caption(fake, big)
        too_big = fake.send(chat, ann, photo=png(), photo_size=31 * MB)
        reply = await fake.wait_reply(chat["id"], too_big["message_id"])
        assert reply["text"] == "That file is too big. Please send an image under 30 MB."


async def _next(fake, message):
    from tests.telegram.conftest import wait_next

    return await wait_next(fake, message)


async def test_a_flood_of_photos_gets_busy_answers_with_a_retry_time(fake, tmp_path, backend):
    settings = telegram_settings(tmp_path, backend, fake, user_burst=2, user_rate_per_minute=2)
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as _stack:
        photos = [fake.send(chat, ann, photo=png(c)) for c in ("red", "green", "blue", "white")]
        replies = [await fake.wait_reply(chat["id"], p["message_id"]) for p in photos]
        busy = [r for r in replies if "try again in" in r["text"]]
        assert len(busy) == 2
        assert all(r["text"].endswith(" s.") for r in busy)
        # Refused before downloading: only the two accepted photos were fetched from Telegram.
        assert len(fake.calls_of("<download>")) == 2
        captions = [p for p in photos if p["message_id"] not in {r["reply_to_message"]["message_id"] for r in busy}]
        for photo in captions:
            await wait_caption(fake, photo)


async def test_stale_forged_and_failing_buttons_are_always_answered(fake, settings, monkeypatch):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        reply = await wait_caption(fake, fake.send(chat, ann, photo=png()))
        cid = caption_id_of(reply)
        for data in ("r0:1:1", "garbage", f"r1:{cid}:7", "f1:abc:y", ""):
            assert (await wait_answer(fake, fake.press(reply, data, ann)))["text"] == "This button has expired."
        gone = await wait_answer(fake, fake.press(reply, "r1:987654:1", ann))
        assert gone["text"] == "That caption no longer exists."

        async def broken(**_kw):
            raise RuntimeError("database on fire")

        monkeypatch.setattr(stack.service, "rate", broken)
        failed = await wait_answer(fake, fake.press(reply, f"r1:{cid}:1", ann))
        assert failed["text"] == "Sorry, something went wrong on my side. Please try again."
        monkeypatch.setattr(stack.service, "stats", broken)
        ask = fake.send(chat, ann, text="/stats")
        assert "went wrong" in (await _next(fake, ask))["text"]
        assert not fake.unanswered_callbacks()


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # raised inside PTB
async def test_telegram_429_is_retried_after_retry_after(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as _stack:
        fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
        photo = fake.send(chat, ann, photo=png())
        await wait_caption(fake, photo)
        assert len(fake.calls_of("sendMessage")) == 2  # refused once, then sent


async def test_a_user_who_blocked_the_bot_is_not_retried_forever(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        fake.blocked.add(7)
        fake.send(chat, ann, photo=png())
        await fake.wait_call("sendMessage")

        async def delivered() -> bool:
            rows = await requests(stack)
            return bool(rows) and rows[0].status == RequestStatus.DELIVERED

        await until(delivered)
        [request] = await requests(stack)
        assert request.reply_message_id is None
