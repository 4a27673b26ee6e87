"""One answer for several images: gathering the separate deliveries of one message's images.

The service captions and delivers every image on its own (one request each), but a message with
three images gets one answer holding three captions: one message with everything, instead of three.
That answer is the placeholder the message's images share (see :mod:`bot.discord.board`); each
image's delivery writes its line into it, so nothing here has to survive a restart. What this
module adds is that they usually do so together, in one edit (or, without a placeholder, in one
new reply).

So each image's delivery *joins* its group (the message or interaction it came from) and waits
until the intake has said which requests belong to it (:meth:`ReplyGroups.open`) and all of them
have arrived; the one that completes the group posts for everyone, and every member returns that
message's id to the service. Deliveries of one group run concurrently (one task per delivery
notice), so nobody waits for a sibling that can't arrive.

Bounded and restart-safe by construction:

* a member waits at most ``wait_s`` (well under the service's delivery lease); then whatever has
  arrived is posted, and stragglers are posted on their own later;
* a group opened by an earlier process (``boot`` differs: we restarted, the bookkeeping is gone)
  or already finished is never waited for: its late members are posted on their own;
* if posting fails, the error goes to the service (which retries that delivery later, and it
  joins the group again) and the other members post themselves.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

P = TypeVar("P")  # a member's payload (the adapter uses captionbot.service.Delivery)
MessageId = str | int | None


@dataclass(frozen=True)
class Batch(Generic[P]):
    """What one reply says: members (by index), and notes for images that were refused at intake."""

    parts: dict[int, P]
    notes: dict[int, str]
    footer: str | None = None


@dataclass
class _Group(Generic[P]):
    expected: set[str] | None = None  # request ids; None until the intake has opened the group
    notes: dict[int, str] = field(default_factory=dict)
    footer: str | None = None
    parts: dict[str, tuple[int, P]] = field(default_factory=dict)
    posted: dict[str, MessageId] = field(default_factory=dict)
    notes_posted: bool = False
    complete: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def check(self) -> None:
        if self.expected is not None and self.expected <= self.parts.keys():
            self.complete.set()


class ReplyGroups(Generic[P]):
    """Groups of deliveries answered by one reply (see the module docstring)."""

    def __init__(self, *, boot: str | None = None, wait_s: float = 60.0, max_groups: int = 2000) -> None:
        self.boot = boot or uuid.uuid4().hex[:12]  # this process's identity, stored in reply contexts
        self.wait_s = wait_s
        self.max_groups = max_groups
        self._groups: OrderedDict[str, _Group[P]] = OrderedDict()
        self._closed: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._groups)

    def _group(self, key: str) -> _Group[P]:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
            while len(self._groups) > self.max_groups:  # bounded: forget the oldest
                self._close(next(iter(self._groups)))
        return group

    def _close(self, key: str) -> None:
        self._groups.pop(key, None)
        self._closed[key] = None
        while len(self._closed) > self.max_groups:
            self._closed.popitem(last=False)

    def open(
        self,
        key: str,
        request_ids: Collection[str],
        *,
        total: int,
        notes: dict[int, str] | None = None,
        footer: str | None = None,
    ) -> None:
        """The intake is done with ``key`` (``total`` images): these requests were queued; ``notes``
        replace the images that were refused (by index). Members may have arrived already."""
        if total <= 1:
            return  # a single image is posted as soon as it arrives: nothing to keep
        if not request_ids:
            self._close(key)
            return
        group = self._group(key)
        group.expected = set(request_ids)
        group.notes = dict(notes or {})
        group.footer = footer
        group.check()

    async def deliver(
        self,
        key: str,
        request_id: str,
        index: int,
        payload: P,
        *,
        total: int,
        boot: str,
        post: Callable[[Batch[P]], Awaitable[MessageId]],
    ) -> MessageId:
        """Have ``payload`` (member ``index`` of ``total``) posted with its group; returns the reply's id.

        ``post(batch)`` sends one reply and returns its id; it is called once per reply."""
        if total <= 1 or boot != self.boot or key in self._closed:
            return await post(Batch({index: payload}, {}))
        group = self._group(key)
        group.parts[request_id] = (index, payload)
        group.check()
        try:
            await asyncio.wait_for(group.complete.wait(), self.wait_s)
        except TimeoutError:
            log.info("image group %s incomplete after %.0f s; replying with what arrived", key, self.wait_s)
        async with group.lock:
            if request_id in group.posted:
                return group.posted[request_id]
            members = {rid: part for rid, part in group.parts.items() if rid not in group.posted}
            batch = Batch(
                {i: p for i, p in members.values()},
                {} if group.notes_posted else group.notes,
                None if group.notes_posted else group.footer,
            )
            try:
                message_id = await post(batch)
            except BaseException:
                # Our delivery goes back to the service (retried later, then it joins again); the
                # other members still waiting post themselves.
                group.parts.pop(request_id, None)
                raise
            group.notes_posted = True
            for rid in members:
                group.posted[rid] = message_id
            if group.expected is not None and group.expected <= group.posted.keys():
                self._close(key)
            elif not group.complete.is_set():
                self._close(key)  # gave up waiting: stragglers are posted on their own
            return message_id
