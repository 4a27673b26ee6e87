"""Telegram says a caption as sure as the model is: plainly, "Probably ...", or not as fact at all."""

from __future__ import annotations

import pytest

from tests.telegram.conftest import bot_stack, telegram_settings, wait_caption
from tests.telegram.fake_api import png
from tests.tiny_model import make_banded_checkpoint

pytestmark = pytest.mark.timeout(60)


async def _reply_text(fake, tmp_path, backend, band: str) -> str:
    settings = telegram_settings(tmp_path, backend, fake, model_path=make_banded_checkpoint(band))
    ann = fake.user(7, "Ann")
    chat = fake.private_chat(ann)
    async with bot_stack(settings):
        reply = await wait_caption(fake, fake.send(chat, ann, photo=png("red")))
    return reply["text"]


async def test_a_probable_caption_is_hedged(fake, tmp_path, backend):
    text = await _reply_text(fake, tmp_path, backend, "probable")
    first = text.splitlines()[0]
    assert first.startswith("Probably ") and first[len("Probably ")].islower() and first.endswith(".")


async def test_an_unsure_caption_states_nothing_as_fact_and_names_the_tagged_thing(fake, tmp_path, backend):
    text = await _reply_text(fake, tmp_path, backend, "unsure")
    assert text.splitlines()[0] == "I can't describe this photo well. It may show a cat."


async def test_a_sure_caption_is_said_plainly(fake, tmp_path, backend):
    text = await _reply_text(fake, tmp_path, backend, "sure")
    first = text.splitlines()[0]
    assert not first.startswith(("Probably", "I can't")) and first[0].isupper() and first.endswith(".")
