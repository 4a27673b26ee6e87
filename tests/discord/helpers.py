"""Small helpers for the Discord tests: images, what the bot sent, what the database holds."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
import simcord
from PIL import Image
from sqlalchemy import select

from captionbot import texts
from captionbot.images import ImageError, inspect_image
from captionbot.storage.models import Caption, CaptionRequest, Feedback, RequestStatus, User
from tests.tiny_model import png_bytes

COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "white"]
CORRUPT = png_bytes()[:60]  # a PNG cut short: looks like one, can't be decoded


def image_error(data: bytes) -> str:
    """What the service says about an image it can't read."""
    with pytest.raises(ImageError) as info:
        inspect_image(data)
    return info.value.user_message


def pngs(n: int) -> list[tuple[str, bytes]]:
    """``n`` different small PNG attachments."""
    return [(f"photo{i + 1}.png", png_bytes(COLORS[i % len(COLORS)], size=(32 + i, 24))) for i in range(n)]


def jpeg_bytes(color: str = "teal") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="JPEG")
    return buf.getvalue()


def callbacks(env: simcord.Env) -> list[int]:
    """The interaction callback types the bot sent, in order (5 = deferred with "thinking")."""
    return [r.json["type"] for r in env.http_requests if r.method == "POST" and r.path.endswith("/callback")]


def custom_ids(message: Any) -> list[str]:
    """Every button custom_id of a message (a discord.Message or a simcord ResponseMessage)."""
    rows = message.components
    out = []
    for row in rows:
        children = row["components"] if isinstance(row, dict) else row.children
        for child in children:
            out.append(child["custom_id"] if isinstance(child, dict) else child.custom_id)
    return out


def labels(message: Any) -> list[str]:
    out = []
    for row in message.components:
        children = row["components"] if isinstance(row, dict) else row.children
        for child in children:
            out.append(child["label"] if isinstance(child, dict) else child.label)
    return out


@dataclass(frozen=True)
class Row:
    id: int
    text: str
    confidence: float | None

    @property
    def sentence(self) -> str:
        """How the bot writes this caption."""
        return texts.caption(self.text, self.confidence)

    @property
    def alt_text(self) -> str:
        """How the bot writes it as an image description: no "I'm not sure" hedge there."""
        return texts.caption(self.text)


async def captions(world: Any) -> list[Row]:
    """Every caption, in the order the images were submitted (not the order the worker finished them)."""
    query = (
        select(Caption.id, Caption.text, Caption.confidence)
        .join(CaptionRequest, Caption.request_id == CaptionRequest.id)
        .order_by(CaptionRequest.id)
    )
    async with world.stack.session_factory() as session:
        rows = (await session.execute(query)).all()
    return [Row(*r) for r in rows]


async def feedback(world: Any, caption_id: int) -> dict[str, tuple[int | None, str | None]]:
    """Discord user id -> (rating, correction) for one caption."""
    async with world.stack.session_factory() as session:
        rows = (
            await session.execute(
                select(User.platform_user_id, Feedback.rating, Feedback.correction)
                .join(User, Feedback.user_id == User.id)
                .where(Feedback.caption_id == caption_id)
            )
        ).all()
    return {r[0]: (r[1], r[2]) for r in rows}


async def statuses(world: Any) -> list[RequestStatus]:
    async with world.stack.session_factory() as session:
        return list((await session.execute(select(CaptionRequest.status).order_by(CaptionRequest.id))).scalars())


async def reply_contexts(world: Any) -> list[dict[str, Any]]:
    async with world.stack.session_factory() as session:
        rows = (await session.execute(select(CaptionRequest.reply_context).order_by(CaptionRequest.id))).scalars()
        return list(rows)
