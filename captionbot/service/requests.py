"""A person's own requests, as a page shows them: where each stands, its caption with labels and
attention, their feedback on it, the photo; and reporting a caption as harmful.

Every method takes the asking person (platform + platform user id) and returns nothing for a request
someone else made: request ids travel in addresses, so ownership is checked here, once.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from captionbot import texts
from captionbot.service.base import ServiceBase
from captionbot.service.results import Attention, RequestState, RequestView, TagLabel, UnknownCaptionError
from captionbot.storage import captions, jobs, request_views, users
from captionbot.storage.models import Platform, RequestStatus
from captionbot.storage.request_views import RequestRow

_STATES: dict[RequestStatus, RequestState] = {RequestStatus.QUEUED: "queued", RequestStatus.RUNNING: "working"}


def _attention(raw: dict[str, object] | None) -> Attention | None:
    """The stored maps (0..255 per cell) as 0..1 grids; None when missing or malformed."""
    if not raw:
        return None
    try:
        side = int(raw["side"])  # type: ignore[call-overload]
        words = [str(w) for w in raw["words"]]  # type: ignore[attr-defined]
        maps = [[float(v) / 255.0 for v in m] for m in raw["maps"]]  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError):
        return None
    if side <= 0 or len(words) != len(maps) or any(len(m) != side * side for m in maps):
        return None
    return Attention(side, tuple(words), tuple(tuple(m) for m in maps))


def _view(row: RequestRow, position: int | None) -> RequestView:
    # Delivered (answered on its platform) or not: done when it has a caption, else failed.
    state: RequestState = _STATES.get(row.status) or ("done" if row.caption_id is not None else "failed")
    labels = tuple(
        TagLabel(str(lab.get("label", "")), str(lab.get("word") or lab.get("label", "")), float(lab.get("p", 0.0)))
        for lab in row.labels or []
    )
    answer = None
    if state == "done" and row.text is not None:
        answer = texts.caption(row.text, row.confidence, band=row.band, hint=row.hint)
    failure = None
    if state == "failed":
        failure = row.error or texts.failure(row.error_code or "caption_error")
    return RequestView(
        request_id=row.public_id,
        state=state,
        queue_position=position if state in ("queued", "working") else None,
        created_at=row.created_at,
        caption_id=row.caption_id,
        text=row.text,
        answer=answer,
        confidence=row.confidence,
        band=row.band,
        hint=row.hint,
        labels=labels,
        attention=_attention(row.attention),
        photo_text=row.photo_text,
        model_version=row.model_version,
        failure_message=failure,
        rating=row.rating,
        correction=row.correction,
        flagged=row.flagged,
        image_mime=row.image_mime,
        photo_kept=not row.image_purged,
    )


async def _with_position(session: AsyncSession, row: RequestRow) -> RequestView:
    """The view of ``row``, with its queue position while it waits (one more query, only then)."""
    position = None
    if row.status in (RequestStatus.QUEUED, RequestStatus.RUNNING):
        position = await jobs.queue_position(session, request_id=row.request_id)
    return _view(row, position)


class Requests(ServiceBase):
    async def request_view(
        self, request_id: str, *, platform: Platform | str, platform_user_id: str | int
    ) -> RequestView | None:
        """Request ``request_id`` as its requester sees it; None when unknown, forgotten or not theirs."""
        async with self.session_factory() as session:
            row = await request_views.request_row(
                session, public_id=request_id, platform=platform, platform_user_id=str(platform_user_id)
            )
            return None if row is None else await _with_position(session, row)

    async def recent_requests(
        self, *, platform: Platform | str, platform_user_id: str | int, limit: int = 20
    ) -> list[RequestView]:
        """This person's latest requests, newest first."""
        async with self.session_factory() as session:
            rows = await request_views.recent_rows(
                session, platform=platform, platform_user_id=str(platform_user_id), limit=limit
            )
            return [await _with_position(session, row) for row in rows]

    async def request_photo(
        self, request_id: str, *, platform: Platform | str, platform_user_id: str | int
    ) -> tuple[bytes, str] | None:
        """(photo bytes, mime type) of this person's request; None when not theirs or no longer kept."""
        async with self.session_factory() as session:
            row = await request_views.request_row(
                session, public_id=request_id, platform=platform, platform_user_id=str(platform_user_id)
            )
        if row is None or row.image_purged:
            return None
        try:
            return await self.image_store.aread(row.image_sha256), row.image_mime
        except FileNotFoundError:
            return None

    async def flag(
        self, *, caption_id: int, platform: Platform | str, platform_user_id: str | int, flagged: bool = True
    ) -> None:
        """This person reports the caption as harmful or offensive (``flagged=False`` takes it back);
        moderators see reported captions."""
        async with self.session_factory.begin() as session:
            if not await captions.caption_exists(session, caption_id=caption_id):
                raise UnknownCaptionError(caption_id)
            user = await users.get_or_create_user(session, platform=platform, platform_user_id=platform_user_id)
            await request_views.set_flag(session, caption_id=caption_id, user_id=user.id, flagged=flagged)
