"""Outgoing rate limiting: PTB's AIORateLimiter, counting only what Telegram's limits count.

Telegram limits *messages*: about 30 per second overall and 20 per minute per group. Stock
AIORateLimiter counts every call that names a ``chat_id``, so in a group the "typing" indicator,
callback answers and admin checks would use up the 20 messages a minute meant for captions. Here
only message-producing methods are throttled; everything still gets AIORateLimiter's 429 handling
(wait ``retry_after``, then retry up to ``max_retries`` times).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import AIORateLimiter

JSONDict = dict[str, Any]

#: Methods that are not messages: no per-chat/per-group throttling (429s are still retried).
UNTHROTTLED = frozenset(
    {
        "sendChatAction",
        "answerCallbackQuery",
        "getChatMember",
        "getChatAdministrators",
        "getFile",
        "getMe",
        "getUpdates",
        "setMyCommands",
        "deleteWebhook",
        "setWebhook",
    }
)


class MessageRateLimiter(AIORateLimiter):
    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        if endpoint in UNTHROTTLED:
            # AIORateLimiter only reads chat_id from ``data`` to pick the limiters; the request
            # itself is made from args/kwargs, so this changes the accounting and nothing else.
            data = {k: v for k, v in data.items() if k != "chat_id"}
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
