"""Discord says a caption as sure as the model is, in the reply and in the alt text alike."""

from __future__ import annotations

import pytest

from tests.discord.helpers import captions
from tests.tiny_model import make_banded_checkpoint, png_bytes

pytestmark = pytest.mark.timeout(120)

UNSURE_CAT = "I can't describe this photo well. It may show a cat."


@pytest.mark.discord_settings(model_path=make_banded_checkpoint("probable"))
async def test_a_probable_caption_is_hedged_in_the_reply_and_the_alt_text(world, env):
    reply = (await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))).response
    [row] = await captions(world)
    assert reply.content == "Probably " + row.text[0].lower() + row.text[1:].rstrip(".") + "."
    posted = await world.alice.click(reply, label="Alt text")
    [image] = posted.response.attachments
    assert image.description == reply.content


@pytest.mark.discord_settings(model_path=make_banded_checkpoint("unsure"))
async def test_an_unsure_caption_states_nothing_as_fact_anywhere(world, env):
    reply = (await world.alice.slash(world.channel, "caption", image=("cat.png", png_bytes()))).response
    assert reply.content == UNSURE_CAT
    post = (await world.alice.slash(world.channel, "alttext", image=("cat.png", png_bytes("orange")))).response
    [image] = post.attachments
    assert image.description == UNSURE_CAT
