"""The pieces without Discord: reply contexts, reply groups, reply composition, image finding."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import discord
import pytest

from bot.discord.app import DiscordAdapter
from bot.discord.board import EditLocks, parse_lines, render
from bot.discord.context import ReplyContext
from bot.discord.delivery import compose, nonce
from bot.discord.groups import Batch, ReplyGroups
from bot.discord.images import looks_like_image, media_host_allowed
from bot.discord.intake import Placeholder
from bot.discord.views import button_label
from captionbot import texts
from captionbot.service import Delivery

pytestmark = pytest.mark.timeout(30)

NOW = discord.utils.utcnow()
INTERACTION_ID = discord.utils.time_snowflake(NOW)


def delivery(index: int, *, ok: bool = True, caption_id: int | None = None) -> Delivery:
    common = {
        "request_id": f"{index:032x}",
        "platform": "discord",
        "platform_chat_id": "1",
        "chat_kind": "guild",
        "platform_user_id": "7",
        "source_message_id": None,
        "status_message_id": None,
        "reply_context": {},
    }
    if ok:
        return Delivery(
            status="done", caption_id=caption_id or index + 100, text=f"caption {index}", confidence=0.9, **common
        )
    return Delivery(status="failed", failure_code="bad_image", failure_message="That image is damaged.", **common)


def test_reply_context_round_trips_as_json_and_hides_its_token():
    ctx = ReplyContext(
        channel_id=2**62 + 1,
        group="i5",
        index=1,
        total=3,
        boot="b",
        mode="alt",
        application_id=2**61,
        interaction_id=INTERACTION_ID,
        token="secret-token",
    )
    data = ctx.to_json()
    assert data["channel_id"] == str(2**62 + 1)  # snowflakes as strings: exact in any JSON reader
    assert ReplyContext.from_json(data) == ctx
    assert "secret-token" not in repr(ctx)
    assert ReplyContext.from_json({"channel_id": "9"}) == ReplyContext(channel_id=9, group="")


def test_interaction_token_is_usable_for_15_minutes_minus_a_margin():
    ctx = ReplyContext(channel_id=1, group="g", application_id=1, interaction_id=INTERACTION_ID, token="t")
    assert ctx.token_usable(NOW + timedelta(minutes=14))
    assert not ctx.token_usable(NOW + timedelta(minutes=14, seconds=45))
    assert not ReplyContext(channel_id=1, group="g").token_usable(NOW)


def test_compose_numbers_lines_and_gives_each_caption_a_row():
    batch = Batch({0: delivery(0), 2: delivery(2, ok=False)}, {1: "Too fast."}, footer="(skipped one)")
    text, view = compose(batch, total=3)
    assert text.splitlines() == [
        "Image 1: Caption 0.",
        "Image 2: Too fast.",
        "Image 3: That image is damaged.",
        "(skipped one)",
    ]
    assert [item.custom_id for item in view.children] == ["cb:rate:100:1", "cb:rate:100:-1", "cb:fix:100", "cb:alt:100"]
    single, _ = compose(Batch({0: delivery(0)}, {}), total=1)
    assert single == "Caption 0."  # one image: the caption alone, first


def test_reply_context_keeps_the_footer_for_an_answer_written_again_later():
    ctx = ReplyContext(channel_id=1, group="m2", total=2, footer="(I skipped 1.)")
    assert ReplyContext.from_json(ctx.to_json()).footer == "(I skipped 1.)"
    assert ReplyContext.from_json(ReplyContext(channel_id=1, group="m2").to_json()).footer is None


def test_a_shared_answer_reads_back_the_lines_it_shows():
    lines = {0: "A cat.", 2: "That image is damaged."}
    text = render(lines, 3, "notes.txt isn't an image I can read.")
    assert text.splitlines() == [
        "Image 1: A cat.",
        "Image 3: That image is damaged.",
        "notes.txt isn't an image I can read.",
    ]
    assert parse_lines(text, 3) == lines  # the footer is no image's line
    assert parse_lines(texts.DESCRIBING, 3) == {}  # the placeholder, before any line
    assert parse_lines("", 2) == {}  # Discord's "thinking" message
    assert render({0: "A cat."}, 1, None) == "A cat." and render({}, 2, "only this") == "only this"


async def test_a_placeholder_is_posted_once_per_message_and_fails_for_all_once_it_failed():
    posts: list[str] = []

    async def post() -> int:
        posts.append("posted")
        return 42

    shared = Placeholder(post)
    assert [await shared(), await shared()] == ["42", "42"] and posts == ["posted"] and shared.id == "42"

    async def broken() -> int:
        raise discord.HTTPException(type("R", (), {"status": 500, "reason": "down"})(), "down")

    failed = Placeholder(broken)
    with pytest.raises(discord.HTTPException):
        await failed()
    with pytest.raises(RuntimeError):  # not tried again: the message's images are answered alike
        await failed()
    assert failed.id is None


def test_nonces_fit_discord_and_belong_to_one_request():
    assert len(nonce("a" * 32)) <= 25 and nonce("a" * 32) == nonce("a" * 32) != nonce("b" * 32)


async def test_edit_locks_are_one_per_message_and_bounded():
    locks = EditLocks(max_size=2)
    first = locks("message:1")
    assert locks("message:1") is first and locks("message:2") is not first
    locks("message:3")
    assert locks("message:1") is not first  # the least recently used was forgotten


def test_images_are_recognised_by_type_or_name_and_fetched_from_discord_only():
    assert looks_like_image("image/png", "x.bin") and looks_like_image(None, "photo.JPG")
    assert not looks_like_image("application/pdf", "x.png") and not looks_like_image(None, "notes.txt")
    assert media_host_allowed("https://media.discordapp.net/external/abc/x.png", {"media.discordapp.net"})
    assert not media_host_allowed("http://media.discordapp.net/x.png", {"media.discordapp.net"})
    assert not media_host_allowed("https://10.0.0.1/x.png", {"media.discordapp.net"})


class Poster:
    def __init__(self, fail: int = 0) -> None:
        self.batches: list[Batch] = []
        self.fail = fail

    async def __call__(self, batch: Batch) -> str:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("Discord down")
        self.batches.append(batch)
        return f"msg{len(self.batches)}"


async def test_group_is_posted_once_when_every_member_arrived():
    groups: ReplyGroups[str] = ReplyGroups(wait_s=30)
    post = Poster()
    waiting = [
        asyncio.create_task(groups.deliver("g", f"r{i}", i, f"p{i}", total=3, boot=groups.boot, post=post))
        for i in (2, 0)
    ]
    await asyncio.sleep(0)  # (a yield, not a wait: let both join before the intake reports)
    groups.open("g", ["r0", "r2"], total=3, notes={1: "refused"})
    assert await asyncio.gather(*waiting) == ["msg1", "msg1"]
    [batch] = post.batches
    assert batch.parts == {0: "p0", 2: "p2"} and batch.notes == {1: "refused"}
    assert len(groups) == 0  # finished groups are forgotten
    late = await groups.deliver("g", "r0", 0, "again", total=3, boot=groups.boot, post=post)
    assert late == "msg2" and post.batches[1].parts == {0: "again"}  # a redelivery stands alone


async def test_group_from_before_a_restart_or_a_single_image_is_not_waited_for():
    groups: ReplyGroups[str] = ReplyGroups(wait_s=30)
    post = Poster()
    assert await groups.deliver("g", "r1", 1, "p", total=2, boot="earlier-process", post=post) == "msg1"
    assert await groups.deliver("h", "r0", 0, "p", total=1, boot=groups.boot, post=post) == "msg2"
    assert len(groups) == 0


async def test_group_gives_up_waiting_and_posts_what_arrived():
    groups: ReplyGroups[str] = ReplyGroups(wait_s=0.01)  # the timeout itself is under test
    post = Poster()
    groups.open("g", ["r0", "r1"], total=2)
    assert await groups.deliver("g", "r0", 0, "p0", total=2, boot=groups.boot, post=post) == "msg1"
    assert await groups.deliver("g", "r1", 1, "p1", total=2, boot=groups.boot, post=post) == "msg2"  # alone
    assert [b.parts for b in post.batches] == [{0: "p0"}, {1: "p1"}]


async def test_a_failed_post_goes_back_to_the_service_and_nothing_is_posted_twice():
    groups: ReplyGroups[str] = ReplyGroups(wait_s=30)
    post = Poster(fail=1)
    groups.open("g", ["r0", "r1"], total=2)
    first = asyncio.create_task(groups.deliver("g", "r0", 0, "p0", total=2, boot=groups.boot, post=post))
    second = asyncio.create_task(groups.deliver("g", "r1", 1, "p1", total=2, boot=groups.boot, post=post))
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(results[0], ConnectionError) and results[1] == "msg1"
    assert post.batches[0].parts == {1: "p1"}  # r0 failed: the service retries it...
    assert await groups.deliver("g", "r0", 0, "p0", total=2, boot=groups.boot, post=post) == "msg2"  # ...later
    assert [b.parts for b in post.batches] == [{1: "p1"}, {0: "p0"}] and len(groups) == 0


def test_texts_are_screen_reader_friendly():
    assert texts.caption("a dog runs") == "A dog runs."
    assert texts.caption("  ") == texts.EMPTY_CAPTION
    assert texts.caption("a dog", 0.05).endswith(texts.LOW_CONFIDENCE)
    assert button_label("Good", index=1, total=2, count=3) == "Good 2 (3)"
    assert button_label("Good", index=0, total=1) == "Good"


async def test_adapter_logs_in_connects_in_the_background_and_closes():
    class StubBot:
        guild_ids: list[int] = []

        def __init__(self) -> None:
            self.calls: list[str] = []
            self.closed = asyncio.Event()

        async def login(self, token: str) -> None:
            self.calls.append(f"login {token}")

        async def connect(self, *, reconnect: bool) -> None:
            self.calls.append("connect")
            await self.closed.wait()  # the gateway runs until close()

        async def close(self) -> None:
            self.calls.append("close")
            self.closed.set()

    bot = StubBot()
    adapter = DiscordAdapter(bot, "secret")  # type: ignore[arg-type]
    await adapter.start()  # returns once logged in; the gateway keeps running
    assert bot.calls == ["login secret"] and "secret" not in repr(adapter)
    await adapter.stop()  # closes, and waits for the gateway task to end
    assert sorted(bot.calls) == ["close", "connect", "login secret"] and adapter._task is None
