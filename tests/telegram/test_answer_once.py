"""An answer is never sent twice: it is an edit of the placeholder recorded with the request, and a
message Telegram delivers again is not taken again. (tests/test_crash.py kills real processes.)"""

from __future__ import annotations

import pytest

from captionbot import texts
from tests.telegram.conftest import bot_stack, buttons, requests, wait_caption
from tests.telegram.fake_api import png
from tests.tiny_model import until

pytestmark = pytest.mark.timeout(90)


async def test_every_answer_is_an_edit_of_the_placeholder(fake, settings):
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings):
        photo = fake.send(chat, ann, photo=png("red"))
        answer = await wait_caption(fake, photo)
        [posted] = fake.calls_of("sendMessage", chat_id=chat["id"])
        assert posted.params["text"] == texts.DESCRIBING
        assert fake.calls_of("editMessageText", message_id=answer["message_id"])
        assert len(fake.replies_to(chat["id"], photo["message_id"])) == 1


async def test_delivering_the_same_answer_again_edits_the_same_message(fake, settings):
    """What recovery does when a bot died after Telegram took the answer but before it was marked sent."""
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        photo = fake.send(chat, ann, photo=png("green"))
        answer = await wait_caption(fake, photo)
        [request] = await requests(stack)
        from captionbot.service.delivery import delivery_from
        from captionbot.storage import deliveries

        async with stack.session_factory() as session:
            extras = await deliveries.delivery_extras(session, request_id=request.id)
            claimed = await deliveries.undelivered_results(session, platform="telegram", limit=10)
        assert claimed == []  # it was marked delivered ...
        full = await _reload_with_caption(stack, request.id)
        again = await stack.adapters["telegram"].delivery(delivery_from(full, extras))  # ... yet sent again
        assert again == str(answer["message_id"])
        assert len(fake.replies_to(chat["id"], photo["message_id"])) == 1
        assert not fake.calls_of("sendMessage", text=answer["text"])  # never a new message with the caption


async def test_a_message_delivered_again_is_answered_once(fake, settings):
    """After a crash Telegram sends the updates the bot had not acknowledged once more."""
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        photo = fake.send(chat, ann, photo=png("blue"))
        await wait_caption(fake, photo)
        fake.inject({"message": photo})  # the same message, as a new update
        follow = fake.send(chat, ann, photo=png("red"))  # handled after the repeat
        await wait_caption(fake, follow)
        await until(lambda: _count(stack, 2))
        assert len(fake.replies_to(chat["id"], photo["message_id"])) == 1
        assert [m for m in fake.bot_messages(chat["id"]) if m["text"] == texts.DESCRIBING] == []
        assert all(buttons(m) for m in fake.bot_messages(chat["id"]))


async def _count(stack, n: int) -> bool:
    return len(await requests(stack)) == n


async def _reload_with_caption(stack, request_id: int):
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from captionbot.storage.models import CaptionRequest

    async with stack.session_factory() as session:
        query = (
            select(CaptionRequest)
            .where(CaptionRequest.id == request_id)
            .options(selectinload(CaptionRequest.caption), selectinload(CaptionRequest.chat))
        )
        return await session.scalar(query)


async def test_the_same_message_twice_at_once_leaves_one_message(fake, settings):
    """Two copies handled at the same moment: one stores the request, the other's placeholder goes."""
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings) as stack:
        photo = fake.send(chat, ann, photo=png("white"))
        fake.inject({"message": photo})  # in the same getUpdates batch: handled concurrently
        await wait_caption(fake, photo)
        await fake.wait_for(lambda: len(fake.replies_to(chat["id"], photo["message_id"])) == 1 or None)
        assert len(await requests(stack)) == 1
