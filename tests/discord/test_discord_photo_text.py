"""Text read in a photo on Discord: after each caption, every image's within its share of one
2,000-character message, the whole of it behind a persistent "All text" button (ephemeral), and in
the /alttext image description within 1,024 characters."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.discord.board import parse_lines, render
from bot.discord.delivery import compose, room_per_image
from bot.discord.groups import Batch
from bot.discord.images import MAX_IMAGES_PER_MESSAGE
from bot.discord.phototext import escaped
from captionbot import texts
from captionbot.service import Delivery
from tests.discord.helpers import captions, custom_ids, labels, pngs
from tests.tiny_model import png_bytes

pytestmark = pytest.mark.timeout(120)

LONG = "\n".join(f"Line {i}: the quick brown fox jumps over the lazy dog" for i in range(200))  # ~10,000 chars
LIMIT = texts.DISCORD_MESSAGE_LIMIT


def done(index: int, photo_text: str | None, *, caption: str = "a red square") -> Delivery:
    return Delivery(
        request_id=f"{index:032x}",
        platform="discord",
        status="done",
        platform_chat_id="1",
        chat_kind="guild",
        platform_user_id="7",
        source_message_id=None,
        status_message_id=None,
        reply_context={},
        caption_id=100 + index,
        text=caption,
        confidence=0.9,
        band="sure",
        photo_text=photo_text,
    )


def words_of(messages: list[str]) -> list[str]:
    return " ".join(messages).removeprefix("Text in the photo:").split()


# --------------------------------------------------------------------------------- composition


def test_a_short_text_follows_its_caption_without_a_button():
    text, view = compose(Batch({0: done(0, "OPEN DAILY\n9 TO 5")}, {}), total=1)
    assert text == f'{texts.caption("a red square", 0.9, band="sure")}\nText in the photo: "OPEN DAILY 9 TO 5"'
    assert view is not None and "cb:text:100" not in [item.custom_id for item in view.children]


@pytest.mark.parametrize("total", range(1, MAX_IMAGES_PER_MESSAGE + 1))
def test_every_image_gets_its_share_and_the_whole_answer_fits_one_message(total):
    footer = texts.too_many_images(total, 3) + " notes.txt isn't an image I can read." * 4
    long_caption = "a very long caption about " + "many things " * 12
    parts = {i: done(i, LONG, caption=long_caption if i % 2 else "a red square") for i in range(total)}
    text, view = compose(Batch(parts, {}, footer), total)
    late = texts.late_reply(text, f"<@{'9' * 20}>")  # what an expired interaction's answer adds
    assert len(late) <= LIMIT
    lines = text.splitlines()
    assert len(lines) == 2 * total + 1 and lines[-1] == footer
    for i in range(total):
        caption, line = lines[2 * i], lines[2 * i + 1]
        assert caption == texts.numbered(i, texts.caption(parts[i].text, 0.9, band="sure"), total=total)
        assert line.startswith('Text in the photo, cut short: "Line 0:') and line.endswith(texts.MORE_BY_BUTTON)
        assert len(f"{caption}\n{line}") <= room_per_image(total, footer) + len(texts.numbered(i, "", total=total))
    assert view is not None
    assert [i.custom_id for i in view.children if i.custom_id.startswith("cb:text:")] == [
        f"cb:text:{100 + i}" for i in range(total)
    ]
    # The share is fair: with room to spare, a short text is not cut because another one is long.
    if total > 1:
        mixed, _ = compose(Batch({0: done(0, LONG), 1: done(1, "EXIT")}, {}), total=2)
        assert 'Text in the photo: "EXIT"' in mixed.splitlines()


def test_a_shared_answer_reads_back_each_image_with_its_text_line():
    lines = {0: 'A cat.\nText in the photo: "MEOW"', 1: "That image is damaged.", 2: "A dog."}
    text = render(lines, 3, "notes.txt isn't an image I can read.")
    assert parse_lines(text, 3) == lines  # a later delivery keeps the others' text lines


def test_markdown_in_the_text_reads_as_written_and_links_get_no_preview():
    assert escaped("# SALE\n||secret|| *now*") == "\\# SALE\n\\|\\|secret\\|\\| \\*now\\*"
    assert escaped("see https://example.com/a_b now") == "see <https://example.com/a_b> now"  # no preview
    text, _ = compose(Batch({0: done(0, "**50% off**")}, {}), total=1)
    assert text.endswith('Text in the photo: "\\*\\*50% off\\*\\*"')


# ------------------------------------------------------------------------------ on the stack


async def test_all_text_button_gives_the_whole_text_ephemerally_and_survives_a_rating(world, env, read_text):
    read_text.text = LONG
    message = (await world.alice.slash(world.channel, "caption", image=("sign.png", png_bytes()))).response
    [row] = await captions(world)

    caption, line = message.content.split("\n")
    assert caption == row.sentence and len(message.content) <= LIMIT
    assert line.startswith('Text in the photo, cut short: "Line 0: the quick') and line.endswith(texts.MORE_BY_BUTTON)
    assert custom_ids(message)[-1] == f"cb:text:{row.id}" and labels(message)[-1] == texts.BUTTON_ALL_TEXT

    shown = await world.bob.click(message, label=texts.BUTTON_ALL_TEXT)  # anyone who sees the caption
    sent = [shown.response, *shown.followups]
    assert shown.ephemeral and all(m.ephemeral for m in shown.followups)
    assert [m.content for m in sent] == texts.all_text(LONG, limit=LIMIT) and len(sent) > 1
    assert all(len(m.content) <= LIMIT for m in sent)
    assert words_of([m.content for m in sent]) == LONG.split()

    await world.alice.click(world.channel.last_message, label="Good")
    assert labels(world.channel.last_message)[0] == "Good (1)"
    assert custom_ids(world.channel.last_message)[-1] == f"cb:text:{row.id}"  # the rating kept it
    again = await world.alice.click(world.channel.last_message, label=texts.BUTTON_ALL_TEXT)
    assert again.response.content == sent[0].content


async def test_several_images_each_get_their_text_and_their_button(world, env, read_text):
    read_text.text = LONG
    posted = await world.bob.send(world.channel, "", attachments=pngs(3))
    reply = (await world.alice.context_menu(world.channel, texts.DISCORD_MENU_CAPTION, posted)).response
    rows = await captions(world)

    assert len(reply.content) <= LIMIT
    lines = reply.content.splitlines()
    assert [lines[0], lines[2], lines[4]] == [f"Image {i + 1}: {r.sentence}" for i, r in enumerate(rows)]
    assert all(lines[i].startswith("Text in the photo, cut short:") for i in (1, 3, 5))
    assert [label for label in labels(reply) if label.startswith(texts.BUTTON_ALL_TEXT)] == [
        f"{texts.BUTTON_ALL_TEXT} {i}" for i in (1, 2, 3)
    ]

    await world.bob.click(reply, label="Good 2")
    after = world.channel.last_message
    assert f"{texts.BUTTON_ALL_TEXT} 2" in labels(after) and f"cb:text:{rows[1].id}" in custom_ids(after)
    assert after.content == reply.content
    shown = await world.bob.click(after, label=f"{texts.BUTTON_ALL_TEXT} 3")
    assert shown.ephemeral and shown.response.content.startswith("Text in the photo:\nLine 0:")


async def test_all_text_of_a_forgotten_caption_says_so(world, env, read_text):
    read_text.text = LONG
    message = (await world.alice.slash(world.channel, "caption", image=("sign.png", png_bytes()))).response
    await world.service.forget(platform="discord", platform_user_id=str(world.alice.id))

    stale = await world.bob.click(message, label=texts.BUTTON_ALL_TEXT)
    assert stale.ephemeral and stale.response.content == texts.CAPTION_GONE and stale.followups == []


async def test_alttext_description_holds_the_caption_and_the_text_within_1024(world, env, read_text):
    read_text.text = LONG
    post = (await world.alice.slash(world.channel, "alttext", image=("sign.png", png_bytes("orange")))).response
    [row] = await captions(world)
    [image] = post.attachments
    assert len(image.description) <= texts.DISCORD_ALT_TEXT_LIMIT
    assert image.description.startswith(f'{row.alt_text}\nText in the photo, cut short: "Line 0: the quick')
    assert image.description.endswith(texts.MORE_BY_BUTTON)
    assert f"cb:text:{row.id}" in custom_ids(post)

    read_text.text = "OPEN DAILY"
    short = (await world.alice.slash(world.channel, "alttext", image=("door.png", png_bytes("blue")))).response
    [_, door] = await captions(world)
    [image] = short.attachments
    assert image.description == f'{door.alt_text}\nText in the photo: "OPEN DAILY"'
    assert f"cb:text:{door.id}" not in custom_ids(short)


def test_a_failed_image_says_why_and_no_text():
    failed = replace(done(0, LONG), status="failed", caption_id=None, failure_message="That image is damaged.")
    text, view = compose(Batch({0: failed}, {}), total=1)
    assert text == "That image is damaged." and view is None
