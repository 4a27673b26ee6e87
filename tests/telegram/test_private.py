"""Private chats: photos, image files, albums, forwards; typing, queue status, caption with buttons."""

from __future__ import annotations

import io

import pytest

from captionbot.storage import users
from captionbot.storage.models import RequestStatus
from tests.gated_engine import BatchGate
from tests.telegram.conftest import bot_stack, buttons, caption_id_of, requests, wait_caption
from tests.telegram.fake_api import png
from tests.tiny_model import until

pytestmark = pytest.mark.timeout(60)


async def test_private_photo_is_captioned_in_reply_with_buttons(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        photo = fake.send(chat, ann, photo=png("red"))
        reply = await wait_caption(fake, photo)

        largest = photo["photo"][-1]["file_id"]
        assert [c.params["file_id"] for c in fake.calls_of("getFile")] == [largest]  # only the largest size
        assert fake.calls_of("sendChatAction", chat_id=7, action="typing")
        assert {c.content_type for c in fake.calls if c.params and c.method != "<download>"} == {
            "application/x-www-form-urlencoded"
        }  # what PTB sends
        text = reply["text"]
        assert text[0].isupper() and text.rstrip().endswith((".", ")"))  # the caption first, as a sentence
        cid = caption_id_of(reply)
        assert buttons(reply) == [
            ("\N{THUMBS UP SIGN} Good", f"r1:{cid}:1"),
            ("\N{THUMBS DOWN SIGN} Wrong", f"r1:{cid}:-1"),
            ("\N{PENCIL}\N{VARIATION SELECTOR-16} Better caption", f"c1:{cid}"),
        ]
        async with stack.session_factory() as session:
            user = await users.get_user(session, platform="telegram", platform_user_id=7)
            assert user.display_name == "Ann"
        # The service recorded the reply: exactly one request, delivered, pointing at our message.
        await until(lambda: _all_delivered(stack))
        [request] = await requests(stack)
        assert request.reply_message_id == str(reply["message_id"])
        assert request.source_message_id == str(photo["message_id"])


async def _all_delivered(stack) -> bool:
    return all(r.status == RequestStatus.DELIVERED for r in await requests(stack))


def heic(color: str = "green") -> bytes:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="HEIF")
    return buf.getvalue()


def webp(color: str = "blue") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="WEBP")
    return buf.getvalue()


async def test_image_files_and_forwarded_photos_are_captioned(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as _stack:
        # Telegram often labels HEIC files application/octet-stream: the name tells us it's an image.
        heic_file = fake.send(
            chat, ann, document=heic(), mime_type="application/octet-stream", file_name="IMG_0001.HEIC"
        )
        webp_file = fake.send(chat, ann, document=webp(), mime_type="image/webp", file_name="cat.webp")
        forwarded = fake.send(chat, ann, photo=png("yellow"), forward_from=fake.user(99, "Bob"))
        for message in (heic_file, webp_file, forwarded):
            reply = await wait_caption(fake, message)
            assert caption_id_of(reply)
        assert {c.params["file_id"] for c in fake.calls_of("getFile")} >= {
            heic_file["document"]["file_id"],
            webp_file["document"]["file_id"],
        }


async def test_album_photos_each_get_a_reply_in_album_order(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as _stack:
        album = [fake.send(chat, ann, photo=png(c), media_group_id="album-1") for c in ("red", "green", "blue")]
        replies = [await wait_caption(fake, photo) for photo in album]
        # Each photo's caption replies to that photo, and they went out in the album's order.
        assert [r["reply_to_message"]["message_id"] for r in replies] == [p["message_id"] for p in album]
        sent_order = [m["reply_to_message"]["message_id"] for m in fake.bot_messages(chat["id"])]
        assert sent_order == [p["message_id"] for p in album]
        assert len({caption_id_of(r) for r in replies}) == 3


async def test_slow_answer_says_queue_position_then_edits_it_into_the_caption(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    gate = BatchGate()  # the worker holds its first batch until the gate opens
    async with bot_stack(settings, telegram={"status_after_s": 0.05}, gate=gate) as _stack:
        photo = fake.send(chat, ann, photo=png("red"))
        status = await fake.wait_reply(chat["id"], photo["message_id"])  # the placeholder, posted at once
        [edit] = await fake.wait_call("editMessageText", message_id=status["message_id"])  # then the position
        assert "queue" in edit.params["text"] or "now" in edit.params["text"]
        assert not buttons(status)
        gate.open()
        answer = await wait_caption(fake, photo)
        assert answer["message_id"] == status["message_id"]  # the status message became the answer
        assert fake.calls_of("editMessageText", message_id=status["message_id"])
        assert len(fake.replies_to(chat["id"], photo["message_id"])) == 1  # no second message


async def test_a_slow_album_gets_one_queue_status_then_a_reply_per_photo(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    gate = BatchGate()
    async with bot_stack(settings, telegram={"status_after_s": 0.05}, gate=gate) as stack:
        album = [fake.send(chat, ann, photo=png(c), media_group_id="a2") for c in ("red", "green")]
        await until(lambda: _count_requests(stack, 2))
        status = await fake.wait_reply(chat["id"], album[0]["message_id"])  # photo 1's placeholder
        [edit] = await fake.wait_call("editMessageText", message_id=status["message_id"])
        assert edit.params["text"].startswith(("Your 2 photos", "Describing your 2 photos"))
        gate.open()
        first, second = [await wait_caption(fake, photo) for photo in album]
        assert first["message_id"] == status["message_id"]  # the album's status became photo 1's answer
        assert second["message_id"] != first["message_id"]
        assert not fake.replies_to(chat["id"], album[1]["message_id"])[1:]  # one message per photo
        statuses = [m for m in fake.bot_messages(chat["id"]) if "photos" in m["text"]]
        assert statuses == []  # every status was edited into a caption


async def _count_requests(stack, n: int) -> bool:
    return len(await requests(stack)) >= n
