"""Answers as edits: the message an answer goes into, and how the images of one message share it.

Discord gives a bot no idempotency key for sending, but editing a message whose id is known can be
repeated safely. So every answer that can be is an *edit* of a message that exists before the
request is stored (see :mod:`bot.discord.intake`):

* a slash command or context menu: the interaction's original response (its deferred "thinking"
  message, whose id the service stores with the request), edited through the interaction's
  webhook while the token lasts (15 minutes);
* a DM or a mention: the placeholder reply ("Describing your photo…") whose id the service stores
  with the request (``Delivery.status_message_id``).

A delivery that is repeated (the process died after Discord accepted the edit but before the
service marked it delivered) edits the same message into the same words again.

**Several images, one message.** Each image is its own request, delivered on its own, and all of
them write into the one shared message: one numbered line per image ("Image 2: …") and one row of
buttons per caption. Nothing about the other images has to be remembered for that: each edit reads
the message as Discord has it, replaces the lines and adds the buttons it is about, keeps the rest
(other captions, refusals, rating counts) and writes it back; when nothing changes, nothing is
sent. That is what makes it safe after a restart, when the bookkeeping in memory is gone. In one
process, edits of one message take turns (:class:`EditLocks`); two processes editing the same
message at the same moment could still lose one line (one Discord bot runs one process).
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import discord

from bot.discord.context import ReplyContext
from bot.discord.respond import NO_MENTIONS
from bot.discord.views import RATING_COUNT, CaptionRow, button_label, caption_view, dynamic_copy
from captionbot import texts

_CAPTION_ID = re.compile(r"cb:(?:rate|fix|alt|text):(\d+)")


@dataclass(frozen=True)
class Target:
    """A message the bot may edit again and again."""

    key: str  # one per message: edits with the same key take turns
    fetch: Callable[[], Awaitable[discord.Message]]
    edit: Callable[..., Awaitable[discord.Message]]


def target(client: discord.Client, ctx: ReplyContext, message_id: str | int | None) -> Target | None:
    """Where the answer to a request with ``ctx`` is written: message ``message_id`` (its
    placeholder); for an interaction, the "thinking" message edited through the interaction's
    webhook while the token is good. None when there is nothing to edit (the answer is then a new
    message)."""
    if not message_id:
        return None
    if ctx.via_interaction:
        if not ctx.token_usable():
            return None
        assert ctx.application_id is not None and ctx.token is not None
        webhook = discord.Webhook.partial(ctx.application_id, ctx.token, client=client)
        original = int(message_id)

        # PATCH /webhooks/{app}/{token}/messages/{id}: the original response is a message of the
        # interaction's webhook. (discord.py would send "@original" URL-quoted through this route.)
        async def fetch_original() -> discord.Message:
            return await webhook.fetch_message(original)

        async def edit_original(**kwargs: Any) -> discord.Message:
            return await webhook.edit_message(original, **kwargs)

        return Target(f"message:{original}", fetch_original, edit_original)
    message = client.get_partial_messageable(ctx.channel_id).get_partial_message(int(message_id))
    return Target(f"message:{message.id}", message.fetch, message.edit)


def original_response(interaction: discord.Interaction[Any], message_id: str | None) -> Target:
    """The interaction's original response, while the interaction is at hand (the intake)."""
    return Target(
        f"message:{message_id or interaction.id}", interaction.original_response, interaction.edit_original_response
    )


class EditLocks:
    """One lock per shared message, so that the read-change-write of two edits can't interleave."""

    def __init__(self, max_size: int = 2000) -> None:
        self.max_size = max_size
        self._locks: OrderedDict[str, asyncio.Lock] = OrderedDict()

    def __call__(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
            while len(self._locks) > self.max_size:  # bounded: forget the least recently used
                self._locks.popitem(last=False)
        self._locks.move_to_end(key)
        return lock


def render(lines: Mapping[int, str], total: int, footer: str | None) -> str:
    """The text of an answer: one line per image (numbered when several), then the footer."""
    text = "\n".join(texts.numbered(i, lines[i], total=total) for i in sorted(lines))
    if footer:
        text = f"{text}\n{footer}" if text else footer
    return text


def parse_lines(content: str, total: int) -> dict[int, str]:
    """The image lines an answer shows (index -> line, with the text read in the image on the line
    after it): the inverse of :func:`render` for ``total`` > 1. Anything else (the placeholder's
    words, the footer) is not an image's line."""
    prefixes = sorted(((texts.numbered(i, "", total=total), i) for i in range(total)), key=lambda p: -len(p[0]))
    lines: dict[int, str] = {}
    last: int | None = None  # the image the line before was about
    for line in content.splitlines():
        if last is not None and line.startswith(texts.TEXT_LABEL):  # the text read in that image
            lines[last] += f"\n{line}"
            continue
        last = None
        for prefix, index in prefixes:
            if prefix and line.startswith(prefix):
                lines[index], last = line[len(prefix) :], index
                break
    return lines


def _row_index(items: Sequence[discord.ui.Item[Any]], total: int) -> int | None:
    """Which image a row of buttons belongs to, from its "Good 2" label (counts ignored)."""
    for item in items:
        label = RATING_COUNT.sub("", str(getattr(item, "label", None) or ""))
        for index in range(total):
            if label == button_label(texts.BUTTON_GOOD, index=index, total=total):
                return index
    return None


def merged_view(
    message: discord.Message, rows: Sequence[CaptionRow], total: int
) -> tuple[discord.ui.View | None, bool]:
    """The buttons ``message`` shows (labels kept, with their rating counts) plus a row for each of
    ``rows`` it doesn't show yet, one row per image in image order; and whether any was added."""
    shown: dict[int, list[discord.ui.Item[Any]]] = {}
    for child in discord.ui.View.from_message(message, timeout=None).children:
        shown.setdefault(child.row or 0, []).append(child)
    groups: list[tuple[float, list[discord.ui.Item[Any]]]] = []
    captions: set[int] = set()
    for _, items in sorted(shown.items()):
        ids = [m[1] for item in items if (m := _CAPTION_ID.fullmatch(str(getattr(item, "custom_id", ""))))]
        captions.update(int(i) for i in ids)
        index = _row_index(items, total)
        groups.append((float("inf") if index is None else index, items))
    added = False
    for row in rows:
        if row.caption_id not in captions:
            captions.add(row.caption_id)
            groups.append((row.index, list(caption_view([row]).children)))
            added = True
    view = discord.ui.View(timeout=None)
    for number, (_, items) in enumerate(sorted(groups, key=lambda g: g[0])):
        for item in items:
            copy = dynamic_copy(item, row=number)
            if copy is not None:
                view.add_item(copy)
    return (view if view.children else None), added


async def merge(
    tgt: Target,
    locks: EditLocks,
    *,
    total: int,
    lines: Mapping[int, str],
    rows: Sequence[CaptionRow] = (),
    pending: Sequence[int] = (),
    footer: str | None = None,
) -> int:
    """Write ``lines`` (index -> line) and the buttons of ``rows`` into the shared answer ``tgt``,
    keeping what it shows of the other images; ``pending`` images without a line yet are shown as
    still being described. Returns the message id. Repeating it changes nothing."""
    async with locks(tgt.key):
        current = await tgt.fetch()
        merged = parse_lines(current.content, total)
        merged.update(lines)
        for index in pending:
            merged.setdefault(index, texts.DESCRIBING)
        content = render(merged, total, footer)
        view, added = merged_view(current, rows, total)
        if content == current.content and not added:
            return current.id  # already says all this: a repeated delivery edits nothing
        edited = await tgt.edit(content=content, view=view, allowed_mentions=NO_MENTIONS)
        return edited.id
