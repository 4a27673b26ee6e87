"""What the Discord adapter stores with each request (``reply_context``), to answer it later.

The delivery may come minutes later, or after a restart, so everything needed to answer is here:
the channel, and for slash commands / context menus the interaction's application id, id and
token (its original response can be edited for 15 minutes). The token is a short-lived credential:
it lives only in the database row, is never logged, and after 15 minutes it is useless anyway.

Several images of one message form a *group* (same ``group`` key, ``index`` 0..``total``-1) that
is answered with one reply; ``boot`` tells whether the group was opened by this very process (see
:mod:`bot.discord.groups`). ``footer`` is what that reply says below the captions (attachments
refused from their metadata, images skipped): stored with every image, so that the answer can be
written again after a restart (see :mod:`bot.discord.board`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import discord

#: How long Discord accepts edits and follow-ups on an interaction token.
INTERACTION_TOKEN_TTL = timedelta(minutes=15)
#: Don't start an edit this close to expiry: fall back to a channel message instead.
TOKEN_SAFETY_MARGIN = timedelta(seconds=30)

Mode = Literal["caption", "alt"]


@dataclass(frozen=True)
class ReplyContext:
    channel_id: int
    group: str
    index: int = 0
    total: int = 1
    boot: str = ""
    mode: Mode = "caption"
    footer: str | None = None
    # Interactions only (slash command, context menu, button):
    application_id: int | None = None
    interaction_id: int | None = None
    token: str | None = None

    @property
    def via_interaction(self) -> bool:
        return self.token is not None and self.application_id is not None

    def token_usable(self, now: datetime | None = None) -> bool:
        """Is the interaction token (still) good for editing the original response?"""
        if not self.via_interaction or self.interaction_id is None:
            return False
        now = now or discord.utils.utcnow()
        expires = discord.utils.snowflake_time(self.interaction_id) + INTERACTION_TOKEN_TTL
        return now < expires - TOKEN_SAFETY_MARGIN

    def to_json(self) -> dict[str, Any]:
        # Snowflakes as strings: JSON numbers lose precision beyond 2**53 in some readers.
        out: dict[str, Any] = {"v": 1}
        for key, value in asdict(self).items():
            if value is None:
                continue
            out[key] = str(value) if key in ("channel_id", "application_id", "interaction_id") else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReplyContext:
        def snowflake(key: str) -> int | None:
            value = data.get(key)
            return int(value) if value is not None else None

        return cls(
            channel_id=int(data["channel_id"]),
            group=str(data.get("group", "")),
            index=int(data.get("index", 0)),
            total=max(1, int(data.get("total", 1))),
            boot=str(data.get("boot", "")),
            mode="alt" if data.get("mode") == "alt" else "caption",
            footer=str(data["footer"]) if data.get("footer") else None,
            application_id=snowflake("application_id"),
            interaction_id=snowflake("interaction_id"),
            token=data.get("token"),
        )

    def __repr__(self) -> str:  # never show the token
        return (
            f"ReplyContext(channel_id={self.channel_id}, group={self.group!r}, index={self.index}, "
            f"total={self.total}, mode={self.mode!r}, via_interaction={self.via_interaction})"
        )
