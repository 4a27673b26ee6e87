"""What the user sees while a photo waits: "typing", the queue position, album replies in order.

This is the only in-memory state of the adapter, and it is cosmetic: after a restart it is simply
empty. Deliveries then still work from the database alone (the status message id is stored with
the request), they just don't wait for album siblings or re-send "typing".

* **typing**: one loop per chat re-sends ``sendChatAction(typing)`` every few seconds while any of
  its photos is waiting (Telegram shows it for about 5 s per call).
* **queue status**: every photo gets a "Describing your photo..." placeholder, posted by intake and
  stored with the request; the answer is an edit of it (an edit can be repeated after a crash, a
  new message can't). If the answer hasn't come ``status_after_s`` after the photo was queued, the
  placeholder is edited into "You're #N in the queue" (or, when posting the placeholder failed, a
  status message is posted and stored). A per-photo lock makes "update the status" and "deliver
  the answer" mutually exclusive, so a status never overwrites an answer.
* **albums**: each photo of an album gets its own reply (to that photo), in album order: a reply
  waits (bounded by ``album_wait_s``) until the replies of the photos before it are out. Only the
  first photo of an album posts a queue status ("Your 3 photos are #2 in the queue").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from telegram import Bot, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.telegram.config import TelegramConfig
from captionbot import texts
from captionbot.service import CaptionService

log = logging.getLogger(__name__)

BotGetter = Callable[[], Awaitable[Bot]]


#: How long an album photo's placeholder waits for its earlier siblings' (they download in parallel).
PLACEHOLDER_WAIT_S = 3.0


@dataclass(eq=False)
class Pending:
    """One photo between "received" and "answered", in this process."""

    chat_id: int
    message_id: int  # the photo's message; orders an album
    thread_id: int | None
    album: str | None
    request_id: str | None = None  # set once the service accepted it
    status_message_id: int | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Progress:
    """Tracks waiting photos; see the module docstring."""

    def __init__(self, config: TelegramConfig, service: CaptionService, bot: BotGetter) -> None:
        self.config = config
        self.service = service
        self._bot = bot
        self._by_request: dict[str, Pending] = {}
        self._by_chat: dict[int, set[Pending]] = {}
        self._albums: dict[tuple[int, str], list[Pending]] = {}
        self._album_changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._typing: dict[int, asyncio.Task[None]] = {}  # one "typing" loop per chat
        # Answers that went out before submit() returned (a fast worker): remembered briefly so the
        # photo's typing/status bookkeeping ends at once.
        self._answered_early: OrderedDict[str, None] = OrderedDict()

    # -- intake side -------------------------------------------------------------------------------

    def begin(self, *, chat_id: int, message_id: int, thread_id: int | None, album: str | None) -> Pending:
        """A photo arrived (before download): start "typing" and hold its place in its album."""
        p = Pending(chat_id, message_id, thread_id, album)
        self._by_chat.setdefault(chat_id, set()).add(p)
        typing = self._typing.get(chat_id)
        if typing is None or typing.done():
            self._typing[chat_id] = self._spawn(self._typing_loop(chat_id, thread_id), f"typing-{chat_id}")
        if album is not None:
            siblings = self._albums.setdefault((chat_id, album), [])
            siblings.append(p)
            siblings.sort(key=lambda s: s.message_id)
        return p

    def submitted(self, p: Pending, request_id: str) -> None:
        """The service queued it: say where it is in the queue if the answer takes a while."""
        p.request_id = request_id
        if self._answered_early.pop(request_id, False) is None:
            self.finish(p)
            return
        self._by_request[request_id] = p
        self._spawn(self._watch(p), f"status-{request_id}")

    def finish(self, p: Pending | None) -> None:
        """Answered, refused or abandoned: forget it (and let album siblings go on)."""
        if p is None or p.done.is_set():
            return
        p.done.set()
        if p.request_id is not None:
            self._by_request.pop(p.request_id, None)
        chat = self._by_chat.get(p.chat_id)
        if chat is not None:
            chat.discard(p)
            if not chat:
                del self._by_chat[p.chat_id]
        if p.album is not None:
            key = (p.chat_id, p.album)
            siblings = self._albums.get(key, [])
            if p in siblings:
                siblings.remove(p)
            if not siblings:
                self._albums.pop(key, None)
            self._spawn(self._notify_albums(), "album-notify")

    # -- delivery side -----------------------------------------------------------------------------

    def for_request(self, request_id: str) -> Pending | None:
        return self._by_request.get(request_id)

    def answered(self, request_id: str, p: Pending | None) -> None:
        """The answer is out (``p``: what :meth:`for_request` returned before sending)."""
        if p is not None:
            self.finish(p)
            return
        self._answered_early[request_id] = None
        while len(self._answered_early) > 1024:
            self._answered_early.popitem(last=False)

    async def wait_placeholder_turn(self, p: Pending) -> None:
        """For an album photo: wait (briefly) until the photos before it have posted their
        placeholders, so the answers, which edit them, stand in the album's order in the chat."""
        if p.album is None:
            return
        key = (p.chat_id, p.album)

        def my_turn() -> bool:
            earlier = (s for s in self._albums.get(key, []) if s.message_id < p.message_id)
            return all(s.status_message_id is not None for s in earlier)

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PLACEHOLDER_WAIT_S), self._album_changed:
                await self._album_changed.wait_for(my_turn)

    def placeholder_posted(self, p: Pending, message_id: int) -> None:
        """The placeholder (to be edited into the answer) is out: album siblings after it may post theirs."""
        p.status_message_id = message_id
        if p.album is not None:
            self._spawn(self._notify_albums(), "album-notify")

    async def wait_turn(self, p: Pending) -> None:
        """For an album photo: wait until the photos before it in the album are answered."""
        if p.album is None:
            return
        key = (p.chat_id, p.album)

        def my_turn() -> bool:
            return all(s.message_id >= p.message_id for s in self._albums.get(key, []) if s is not p)

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.album_wait_s), self._album_changed:
                await self._album_changed.wait_for(my_turn)

    async def close(self) -> None:
        """Stop typing loops and status timers (on adapter stop)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for p in list(self._by_request.values()):
            p.done.set()
        self._by_request.clear()
        self._by_chat.clear()
        self._albums.clear()
        self._typing.clear()

    # -- internals ---------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _notify_albums(self) -> None:
        async with self._album_changed:
            self._album_changed.notify_all()

    async def _typing_loop(self, chat_id: int, thread_id: int | None) -> None:
        try:
            await self._keep_typing(chat_id, thread_id)
        finally:
            if self._typing.get(chat_id) is asyncio.current_task():
                del self._typing[chat_id]

    async def _keep_typing(self, chat_id: int, thread_id: int | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.typing_for_s
        while self._by_chat.get(chat_id) and loop.time() < deadline:
            try:
                bot = await self._bot()
                await bot.send_chat_action(chat_id, ChatAction.TYPING, message_thread_id=thread_id)
            except (TelegramError, RuntimeError) as exc:  # cosmetic: never worth more than a debug line
                log.debug("typing indicator failed: %s", type(exc).__name__)
            waiting = list(self._by_chat.get(chat_id, ()))
            if not waiting:
                return
            # Wake up when every photo of this chat is answered, or when "typing" needs renewing.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.typing_every_s):
                    await asyncio.gather(*(p.done.wait() for p in waiting))

    def _album_leader(self, p: Pending) -> bool:
        siblings = self._albums.get((p.chat_id, p.album or ""), [])
        return not siblings or siblings[0] is p

    async def _watch(self, p: Pending) -> None:
        """The queue status after ``status_after_s``; forget the photo after ``pending_ttl_s`` (its
        answer may have gone out from another bot process sharing the queue)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.status_after_s):
                await p.done.wait()
                return
        if p.album is None or self._album_leader(p):  # one status message per album, from its first photo
            await self._post_status(p)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.pending_ttl_s):
                await p.done.wait()
        self.finish(p)

    async def _post_status(self, p: Pending) -> None:
        async with p.lock:
            if p.done.is_set() or p.request_id is None:
                return
            position = await self.service.queue_position(p.request_id)
            if position is None:
                return  # finished: the answer is on its way
            photos = len(self._albums.get((p.chat_id, p.album), [])) if p.album else 1
            text = texts.queue_status(position, max(photos, 1))
            try:
                bot = await self._bot()
                if p.status_message_id is not None:  # the placeholder: say the position in it
                    await bot.edit_message_text(text, chat_id=p.chat_id, message_id=p.status_message_id)
                    return
                msg = await bot.send_message(
                    p.chat_id,
                    text,
                    message_thread_id=p.thread_id,
                    reply_parameters=ReplyParameters(p.message_id, allow_sending_without_reply=True),
                )
            except (TelegramError, RuntimeError) as exc:
                log.info("queue status message failed: %s", type(exc).__name__)
                return
            p.status_message_id = msg.message_id
            await self.service.set_status_message(p.request_id, msg.message_id)
