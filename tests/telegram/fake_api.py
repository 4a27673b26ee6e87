"""A fake Telegram Bot API server for end-to-end tests (aiohttp on 127.0.0.1, a random port).

It speaks the real wire format to an unmodified python-telegram-bot:

* ``POST /bot<token>/<method>`` with ``application/x-www-form-urlencoded`` (what PTB sends: every
  non-string value JSON-encoded), ``multipart/form-data`` or ``application/json`` bodies;
  answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description"}`` with
  Telegram's own error descriptions for the cases the bot must handle;
* ``GET /file/bot<token>/<file_path>`` serves downloads.

Methods: getMe, getUpdates (long polling: returns as soon as an update is injected), setWebhook,
deleteWebhook, getWebhookInfo, setMyCommands, sendMessage, editMessageText,
editMessageReplyMarkup, sendChatAction, answerCallbackQuery, getFile, getChatMember,
getChatAdministrators, deleteMessage.

Tests play the users: :meth:`FakeTelegram.send` (a text, photo, file, album part, forward, reply,
with command and mention entities computed as Telegram does), :meth:`FakeTelegram.press` (a
callback query). Group privacy mode is emulated: with it on, a group message reaches the bot only
if it is a command (for it), a reply to the bot, or mentions it. Every API call is recorded;
:meth:`FakeTelegram.wait_for` awaits a condition on the recorded state (no sleeps).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

BOT_ID = 5000001
PUBLIC_FILE_LIMIT = 20 * 1024 * 1024

# Parameters PTB JSON-encodes in form bodies.
_JSON_FIELDS = {
    "reply_markup",
    "reply_parameters",
    "entities",
    "caption_entities",
    "commands",
    "scope",
    "allowed_updates",
    "media",
    "link_preview_options",
}
_INT_FIELDS = {
    "message_id",
    "user_id",
    "offset",
    "limit",
    "timeout",
    "message_thread_id",
    "cache_time",
    "max_connections",
}
_BOOL_FIELDS = {
    "show_alert",
    "drop_pending_updates",
    "disable_notification",
    "protect_content",
    "allow_sending_without_reply",
}
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{3,}))?")
_MENTION = re.compile(r"@([A-Za-z0-9_]{5,32})")


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    content_type: str


@dataclass
class FakeFile:
    data: bytes
    path: str
    size: int  # what Telegram reports (tests may claim more than the bytes they hold)
    unique_id: str


@dataclass
class FakeTelegram:
    token: str = "123456:TEST-fake-token-do-not-log"
    bot_username: str = "CaptionTestBot"
    privacy_mode: bool = True
    calls: list[Call] = field(default_factory=list)
    messages: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)  # chat id -> id -> message
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, FakeFile] = field(default_factory=dict)
    members: dict[tuple[int, int], str] = field(default_factory=dict)  # (chat, user) -> status
    member_users: dict[int, dict[str, Any]] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)  # users who blocked the bot
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # scope type -> commands
    webhook: dict[str, Any] | None = None
    callbacks: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> query
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> answerCallbackQuery params
    hidden: list[dict[str, Any]] = field(default_factory=list)  # group messages privacy mode kept from the bot
    failures: dict[str, list[ApiError]] = field(default_factory=dict)
    file_limit: int | None = PUBLIC_FILE_LIMIT  # getFile refuses bigger files; None: a self-hosted server

    def __post_init__(self) -> None:
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = 0

    # ------------------------------------------------------------------------------ server

    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        self._closing = True
        await self._notify()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """What goes into CAPTIONBOT_TELEGRAM_API_BASE_URL."""
        return f"http://127.0.0.1:{self.port}/bot"

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params = await _read_params(request)
        self.calls.append(Call(method, params, request.content_type))
        await self._notify()  # a long poll waits inside its handler: its call is news already
        handler = getattr(self, f"_m_{method.lower()}", None)
        try:
            if handler is None:
                raise ApiError(404, "Not Found")
            if self.failures.get(method):
                raise self.failures[method].pop(0)
            result = await handler(params)
        except ApiError as exc:
            body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
            await self._notify()
            return web.json_response(body, status=exc.code)
        await self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for f in self.files.values():
            if f.path == path:
                self.calls.append(Call("<download>", {"path": path}, ""))
                await self._notify()
                return web.Response(body=f.data, content_type="application/octet-stream")
        return web.Response(status=404)

    # ------------------------------------------------------------------------------ waiting

    async def wait_for(self, condition: Callable[[], T], within: float = 15.0) -> T:
        """Wait until ``condition()`` is truthy (re-checked after every API call); return it."""
        async with asyncio.timeout(within), self._changed:
            while not (result := condition()):
                await self._changed.wait()
            return result

    def calls_of(self, method: str, **match: Any) -> list[Call]:
        return [c for c in self.calls if c.method == method and all(c.params.get(k) == v for k, v in match.items())]

    async def wait_call(self, method: str, count: int = 1, within: float = 15.0, **match: Any) -> list[Call]:
        """The first ``count`` calls of ``method`` whose params include ``match``."""

        def enough() -> list[Call] | None:
            found = self.calls_of(method, **match)
            return found[:count] if len(found) >= count else None

        return await self.wait_for(enough, within)

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for m in self.messages.get(chat_id, {}).values() if m["from"]["id"] == BOT_ID]

    def replies_to(self, chat_id: int, message_id: int) -> list[dict[str, Any]]:
        """The bot's messages in reply to ``message_id``."""
        return [
            m for m in self.bot_messages(chat_id) if (m.get("reply_to_message") or {}).get("message_id") == message_id
        ]

    async def wait_reply(
        self, chat_id: int, message_id: int, *, having: str | None = None, within: float = 15.0
    ) -> dict[str, Any]:
        """The bot's reply to a message (whose text contains ``having``, if given)."""

        def found() -> dict[str, Any] | None:
            for m in self.replies_to(chat_id, message_id):
                if having is None or having in m.get("text", ""):
                    return m
            return None

        return await self.wait_for(found, within)

    def unanswered_callbacks(self) -> list[str]:
        return [cid for cid in self.callbacks if cid not in self.answered]

    # ------------------------------------------------------------------------------ the users' side

    @staticmethod
    def user(user_id: int, first_name: str = "Ann", **extra: Any) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": first_name, **extra}

    def private_chat(self, user: dict[str, Any]) -> dict[str, Any]:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        self.chats[chat["id"]] = chat
        return chat

    def group_chat(self, chat_id: int = -1001000000001, title: str = "Friends") -> dict[str, Any]:
        chat = {"id": chat_id, "type": "supergroup", "title": title}
        self.chats[chat_id] = chat
        return chat

    def add_file(self, data: bytes, *, size: int | None = None, suffix: str = "jpg") -> tuple[str, str]:
        """Store a file the bot may download; returns (file_id, file_unique_id)."""
        n = next(self._file_ids)
        file_id, unique = f"FILE{n:04d}-{'x' * 40}", f"U{n:04d}"
        self.files[file_id] = FakeFile(data, f"files/file_{n}.{suffix}", len(data) if size is None else size, unique)
        return file_id, unique

    def photo_sizes(self, data: bytes, *, size: int | None = None, thumb: bytes = b"thumb") -> list[dict[str, Any]]:
        """PhotoSize list as Telegram sends it: smaller sizes first, the original last."""
        sizes = []
        for w, h, blob, reported in [(90, 67, thumb, None), (320, 240, thumb + b"-m", None), (1280, 960, data, size)]:
            file_id, unique = self.add_file(blob, size=reported)
            sizes.append(
                {
                    "file_id": file_id,
                    "file_unique_id": unique,
                    "width": w,
                    "height": h,
                    "file_size": self.files[file_id].size,
                }
            )
        return sizes

    def send(
        self,
        chat: dict[str, Any],
        user: dict[str, Any],
        *,
        text: str | None = None,
        photo: bytes | None = None,
        photo_size: int | None = None,
        document: bytes | None = None,
        mime_type: str = "image/png",
        file_name: str = "photo.png",
        document_size: int | None = None,
        report_size: bool = True,
        caption: str | None = None,
        reply_to: dict[str, Any] | None = None,
        media_group_id: str | None = None,
        forward_from: dict[str, Any] | None = None,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """A user posts a message; the bot gets it as an update (unless privacy mode hides it)."""
        msg: dict[str, Any] = {
            "message_id": self._next_message_id(chat["id"]),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
        }
        if text is not None:
            msg["text"] = text
            if entities := _entities(text):
                msg["entities"] = entities
        if photo is not None:
            msg["photo"] = self.photo_sizes(photo, size=photo_size)
        if document is not None:
            file_id, unique = self.add_file(document, size=document_size)
            msg["document"] = {
                "file_id": file_id,
                "file_unique_id": unique,
                "file_name": file_name,
                "mime_type": mime_type,
            }
            if report_size:  # Telegram may leave file_size out
                msg["document"]["file_size"] = self.files[file_id].size
        if caption is not None:
            msg["caption"] = caption
            if entities := _entities(caption):
                msg["caption_entities"] = entities
        if reply_to is not None:
            msg["reply_to_message"] = _without_reply(reply_to)
        if media_group_id is not None:
            msg["media_group_id"] = media_group_id
        if forward_from is not None:
            msg["forward_origin"] = {"type": "user", "date": int(time.time()) - 60, "sender_user": forward_from}
        self.messages.setdefault(chat["id"], {})[msg["message_id"]] = msg
        if deliver and self._bot_sees(msg):
            self.inject({"message": msg})
        else:
            self.hidden.append(msg)
        return msg

    def press(self, message: dict[str, Any], data: str, user: dict[str, Any]) -> str:
        """A user presses an inline button under ``message``; returns the callback query id."""
        query_id = f"{next(self._callback_ids)}{int(time.time())}"
        current = self.messages.get(message["chat"]["id"], {}).get(message["message_id"], message)
        query = {"id": query_id, "from": user, "message": current, "chat_instance": "ci-1", "data": data}
        self.callbacks[query_id] = query
        self.inject({"callback_query": query})
        return query_id

    def inject(self, update: dict[str, Any]) -> int:
        """Queue a raw update for getUpdates; returns its update_id."""
        update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        asyncio.get_running_loop().create_task(self._notify())
        return update["update_id"]

    def set_member(self, chat_id: int, user: dict[str, Any], status: str) -> None:
        self.members[(chat_id, user["id"])] = status
        self.member_users[user["id"]] = user

    def fail_next(self, method: str, code: int, description: str, retry_after: int | None = None) -> None:
        self.failures.setdefault(method, []).append(ApiError(code, description, retry_after))

    # ------------------------------------------------------------------------------ helpers

    @property
    def bot_user(self) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Caption Bot", "username": self.bot_username}

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _bot_sees(self, msg: dict[str, Any]) -> bool:
        if msg["chat"]["type"] == "private" or not self.privacy_mode:
            return True
        body = msg.get("text") or msg.get("caption") or ""
        if m := _COMMAND.match(body):
            return m[2] is None or m[2].lower() == self.bot_username.lower()
        if (msg.get("reply_to_message") or {}).get("from", {}).get("id") == BOT_ID:
            return True
        return f"@{self.bot_username.lower()}" in body.lower()

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        try:
            return self.chats[int(chat_id)]
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None

    def _message(self, chat_id: Any, message_id: Any, missing: str) -> dict[str, Any]:
        msg = self.messages.get(int(chat_id), {}).get(int(message_id or 0))
        if msg is None:
            raise ApiError(400, f"Bad Request: {missing}")
        return msg

    def _check_markup(self, markup: dict[str, Any] | None) -> None:
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")

    @staticmethod
    def _check_text(text: Any) -> str:
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return text

    # ------------------------------------------------------------------------------ methods

    async def _m_getme(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
        }

    async def _m_getupdates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset, limit = int(p.get("offset") or 0), int(p.get("limit") or 100)
        allowed = p.get("allowed_updates") or []
        self._updates = [u for u in self._updates if u["update_id"] >= offset]

        def ready() -> list[dict[str, Any]]:
            return [u for u in self._updates if not allowed or any(k in u for k in allowed)][:limit]

        if not ready() and float(p.get("timeout") or 0) > 0 and not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(float(p["timeout"])), self._changed:
                    await self._changed.wait_for(lambda: bool(ready()) or self._closing)
        return ready()

    async def _m_setwebhook(self, p: dict[str, Any]) -> bool:
        self.webhook = {
            "url": p.get("url"),
            "secret_token": p.get("secret_token"),
            "allowed_updates": p.get("allowed_updates"),
        }
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _m_deletewebhook(self, p: dict[str, Any]) -> bool:
        self.webhook = None
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _m_getwebhookinfo(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": (self.webhook or {}).get("url") or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _m_setmycommands(self, p: dict[str, Any]) -> bool:
        commands = p.get("commands") or []
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", c.get("command", "")):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(c.get("description", "")) <= 256:
                raise ApiError(400, "Bad Request: command description is empty or too long")
        scope = (p.get("scope") or {"type": "default"})["type"]
        self.commands[scope] = commands
        return True

    async def _m_sendchataction(self, p: dict[str, Any]) -> bool:
        self._chat(p.get("chat_id"))
        return True

    async def _m_sendmessage(self, p: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(p.get("chat_id"))
        if chat["id"] in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        text = self._check_text(p.get("text"))
        self._check_markup(p.get("reply_markup"))
        msg: dict[str, Any] = {
            "message_id": self._next_message_id(chat["id"]),
            "date": int(time.time()),
            "chat": chat,
            "from": self.bot_user,
            "text": text,
        }
        reply = p.get("reply_parameters") or {}
        if reply.get("message_id"):
            target = self.messages.get(chat["id"], {}).get(int(reply["message_id"]))
            if target is not None:
                msg["reply_to_message"] = _without_reply(target)
            elif not reply.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to be replied not found")
        for key in ("entities", "message_thread_id"):
            if p.get(key):
                msg[key] = p[key]
        if p.get("reply_markup") and "inline_keyboard" in p["reply_markup"]:
            msg["reply_markup"] = p["reply_markup"]
        self.messages.setdefault(chat["id"], {})[msg["message_id"]] = msg
        return msg

    async def _m_editmessagetext(self, p: dict[str, Any]) -> dict[str, Any]:
        msg = self._message(p.get("chat_id"), p.get("message_id"), "message to edit not found")
        if msg["from"]["id"] != BOT_ID:
            raise ApiError(400, "Bad Request: message can't be edited")
        text = self._check_text(p.get("text"))
        self._check_markup(p.get("reply_markup"))
        markup = p.get("reply_markup") or None
        if msg.get("text") == text and msg.get("reply_markup") == markup:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        msg["text"], msg["edit_date"] = text, int(time.time())
        msg.pop("entities", None)
        _set_markup(msg, markup)
        return msg

    async def _m_editmessagereplymarkup(self, p: dict[str, Any]) -> dict[str, Any]:
        msg = self._message(p.get("chat_id"), p.get("message_id"), "message to edit not found")
        if msg["from"]["id"] != BOT_ID:
            raise ApiError(400, "Bad Request: message can't be edited")
        self._check_markup(p.get("reply_markup"))
        markup = p.get("reply_markup") or None
        if msg.get("reply_markup") == markup:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        _set_markup(msg, markup)
        msg["edit_date"] = int(time.time())
        return msg

    async def _m_deletemessage(self, p: dict[str, Any]) -> bool:
        self._message(p.get("chat_id"), p.get("message_id"), "message to delete not found")
        del self.messages[int(p["chat_id"])][int(p["message_id"])]
        return True

    async def _m_answercallbackquery(self, p: dict[str, Any]) -> bool:
        query_id = str(p.get("callback_query_id"))
        if query_id not in self.callbacks or query_id in self.answered:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        if len(p.get("text") or "") > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.answered[query_id] = p
        return True

    async def _m_getfile(self, p: dict[str, Any]) -> dict[str, Any]:
        f = self.files.get(str(p.get("file_id")))
        if f is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if self.file_limit is not None and f.size > self.file_limit:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": p["file_id"], "file_unique_id": f.unique_id, "file_size": f.size, "file_path": f.path}

    async def _m_getchatmember(self, p: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(p.get("chat_id"))
        user_id = int(p.get("user_id") or 0)
        status = self.members.get((chat["id"], user_id), "member")
        user = self.member_users.get(user_id) or self.user(user_id)
        return _member(status, user)

    async def _m_getchatadministrators(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        chat = self._chat(p.get("chat_id"))
        return [
            _member(status, self.member_users.get(uid) or self.user(uid))
            for (cid, uid), status in self.members.items()
            if cid == chat["id"] and status in ("creator", "administrator")
        ]


# ---------------------------------------------------------------------------------- wire helpers


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Request parameters, whatever the body encoding (form, multipart, JSON, query string)."""
    if request.content_type == "application/json":
        raw = await request.json() if request.can_read_body else {}
        return dict(raw or {})
    raw_params: dict[str, Any] = dict(request.query)
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for key, value in (await request.post()).items():
            raw_params[key] = value if isinstance(value, str) else value.file.read()  # a file part
    return {key: _decode(key, value) for key, value in raw_params.items()}


def _decode(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in _JSON_FIELDS:
        return json.loads(value)
    if key in _INT_FIELDS:
        return int(value)
    if key in _BOOL_FIELDS:
        return value.lower() == "true"
    if key == "chat_id":
        return int(value) if re.fullmatch(r"-?\d+", value) else value
    return value


def _entities(text: str) -> list[dict[str, Any]]:
    """bot_command and mention entities, as Telegram computes them (ASCII texts in these tests)."""
    found = []
    if m := _COMMAND.match(text):
        found.append({"type": "bot_command", "offset": 0, "length": m.end()})
    for m in _MENTION.finditer(text):
        if m.start() == 0 or not re.match(r"[/\w]", text[m.start() - 1]):
            found.append({"type": "mention", "offset": m.start(), "length": m.end() - m.start()})
    return found


def _without_reply(message: dict[str, Any]) -> dict[str, Any]:
    """A message as embedded in reply_to_message (Telegram doesn't nest further)."""
    return {k: v for k, v in message.items() if k != "reply_to_message"}


def _set_markup(msg: dict[str, Any], markup: dict[str, Any] | None) -> None:
    if markup and markup.get("inline_keyboard"):
        msg["reply_markup"] = markup
    else:
        msg.pop("reply_markup", None)


def _member(status: str, user: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {"status": status, "user": user}
    if status == "creator":
        base["is_anonymous"] = False
    elif status == "administrator":
        base.update(
            {
                k: True
                for k in (
                    "can_be_edited",
                    "can_manage_chat",
                    "can_delete_messages",
                    "can_manage_video_chats",
                    "can_restrict_members",
                    "can_promote_members",
                    "can_change_info",
                    "can_invite_users",
                    "can_post_stories",
                    "can_edit_stories",
                    "can_delete_stories",
                )
            },
            is_anonymous=False,
        )
    return base


def png(color: str = "red", size: tuple[int, int] = (32, 24)) -> bytes:
    """A small valid PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()
