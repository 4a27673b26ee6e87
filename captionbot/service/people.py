"""What people do besides sending photos: rate and correct captions, privacy commands, their
numbers, a group's settings, and the look-ups the buttons need."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from captionbot import texts
from captionbot.service.base import ServiceBase
from captionbot.service.results import (
    CaptionRecord,
    CorrectionPrompt,
    CorrectionTaken,
    FeedbackState,
    ForgetReport,
    InvalidFeedbackError,
    ModelOverview,
    UnknownCaptionError,
    UserStats,
)
from captionbot.storage import captions, corrections, model_versions, users
from captionbot.storage.models import ChatKind, Platform

log = logging.getLogger(__name__)

MAX_CORRECTION_CHARS = 500
VALID_RATINGS = frozenset({-1, 1, 2, 3, 4, 5})  # thumbs (-1/+1) or stars (1..5)


class People(ServiceBase):
    # -- feedback --------------------------------------------------------------------------------

    async def rate(
        self, *, caption_id: int, platform: Platform | str, platform_user_id: str | int, rating: int
    ) -> FeedbackState:
        """Set this person's rating of a caption (-1/+1 thumbs or 1..5 stars; rating again replaces it)."""
        if rating not in VALID_RATINGS:
            raise InvalidFeedbackError(f"rating {rating!r}", texts.INVALID_RATING)
        return await self._feedback(caption_id, platform, platform_user_id, {"rating": int(rating)})

    async def correct(
        self, *, caption_id: int, platform: Platform | str, platform_user_id: str | int, text: str
    ) -> FeedbackState:
        """Store this person's better caption for a caption (replaces their earlier one)."""
        text = " ".join((text or "").split())
        if not text:
            raise InvalidFeedbackError("empty correction", texts.EMPTY_CORRECTION)
        if len(text) > MAX_CORRECTION_CHARS:
            raise InvalidFeedbackError("correction too long", texts.correction_too_long(MAX_CORRECTION_CHARS))
        return await self._feedback(caption_id, platform, platform_user_id, {"correction": text})

    async def _feedback(
        self, caption_id: int, platform: Platform | str, platform_user_id: str | int, values: dict[str, Any]
    ) -> FeedbackState:
        async with self.session_factory.begin() as session:
            if not await captions.caption_exists(session, caption_id=caption_id):
                raise UnknownCaptionError(caption_id)
            user = await users.get_or_create_user(session, platform=platform, platform_user_id=platform_user_id)
            mine = await captions.set_feedback(session, caption_id=caption_id, user_id=user.id, **values)
            ratings, score = await captions.feedback_totals(session, caption_id=caption_id)
        return FeedbackState(caption_id, mine.rating, mine.correction, ratings, score)

    # -- corrections in progress ---------------------------------------------------------------------

    async def ask_for_correction(
        self, *, caption_id: int, platform: Platform | str, platform_chat_id: str | int, platform_user_id: str | int
    ) -> CorrectionPrompt:
        """ "Better caption" was pressed: wait (``settings.correction_wait_s``) for this person's next
        text in this chat. A second press for the same caption while waiting re-uses the prompt."""
        now = self.now()
        async with self.session_factory.begin() as session:
            found = await captions.caption_lookup(session, caption_id=caption_id, platform=platform)
            if found is None:
                raise UnknownCaptionError(caption_id)
            user = await users.get_or_create_user(session, platform=platform, platform_user_id=platform_user_id)
            mine = await corrections.get_pending(
                session, platform=platform, platform_chat_id=platform_chat_id, platform_user_id=platform_user_id
            )
            if mine is not None and mine.caption_id == caption_id and mine.expires_at > now and mine.prompt_message_id:
                return CorrectionPrompt(caption_id, found.text, mine.prompt_message_id, asked_before=True)
            started = await corrections.start_pending(
                session,
                platform=platform,
                platform_chat_id=platform_chat_id,
                user_id=user.id,
                caption_id=caption_id,
                now=now,
                expires_at=now + timedelta(seconds=self.settings.correction_wait_s),
            )
        return CorrectionPrompt(caption_id, found.text, None, asked_before=started is None)

    async def set_correction_prompt(
        self,
        *,
        platform: Platform | str,
        platform_chat_id: str | int,
        platform_user_id: str | int,
        message_id: str | int,
    ) -> None:
        """Remember the prompt posted for this person's correction (so a second press re-uses it)."""
        async with self.session_factory.begin() as session:
            mine = await corrections.get_pending(
                session, platform=platform, platform_chat_id=platform_chat_id, platform_user_id=platform_user_id
            )
            if mine is not None:
                mine.prompt_message_id = str(message_id)

    async def take_correction(
        self, *, platform: Platform | str, platform_chat_id: str | int, platform_user_id: str | int, text: str
    ) -> CorrectionTaken | None:
        """This person's text in this chat, if a correction is awaited from them there: stored as the
        correction (replacing an earlier one), or ``expired``. None: nothing awaited (an ordinary message).
        Raises InvalidFeedbackError (empty, too long) and keeps waiting."""
        async with self.session_factory() as session:
            mine = await corrections.get_pending(
                session, platform=platform, platform_chat_id=platform_chat_id, platform_user_id=platform_user_id
            )
        if mine is None:
            return None
        now = self.now()
        caption_id, expired = mine.caption_id, mine.expires_at <= now
        # Long past: this text is not a late correction but a new conversation.
        long_past = expired and now - mine.expires_at > timedelta(seconds=self.settings.correction_wait_s)
        state = None
        if not expired:
            try:
                state = await self.correct(
                    caption_id=caption_id, platform=platform, platform_user_id=platform_user_id, text=text
                )
            except UnknownCaptionError:  # forgotten meanwhile
                state = None
        async with self.session_factory.begin() as session:
            await corrections.end_pending(session, pending_id=mine.id)
        if long_past:
            return None
        if expired:
            return CorrectionTaken(caption_id, expired=True)
        return CorrectionTaken(caption_id, None if state is None else state.correction, state)

    async def cancel_correction(
        self, *, platform: Platform | str, platform_chat_id: str | int, platform_user_id: str | int
    ) -> bool:
        """Stop waiting for this person's correction here; True if one was awaited."""
        async with self.session_factory.begin() as session:
            mine = await corrections.get_pending(
                session, platform=platform, platform_chat_id=platform_chat_id, platform_user_id=platform_user_id
            )
            return mine is not None and await corrections.end_pending(session, pending_id=mine.id)

    async def caption_exists(self, caption_id: int) -> bool:
        """False once /forget (or retention) deleted it, or for a forged id."""
        async with self.session_factory() as session:
            return await captions.caption_exists(session, caption_id=caption_id)

    async def find_caption(self, caption_id: int, *, platform: Platform | str) -> CaptionRecord | None:
        """Caption ``caption_id`` asked for on ``platform``, or None (forgotten, or another platform's)."""
        async with self.session_factory() as session:
            found = await captions.caption_lookup(session, caption_id=caption_id, platform=platform)
        if found is None:
            return None
        return CaptionRecord(
            caption_id,
            found.text,
            found.requester_id,
            found.image_sha256,
            found.image_mime,
            found.image_purged,
            found.band,
            found.hint,
            found.photo_text,
        )

    async def read_photo(self, record: CaptionRecord) -> bytes | None:
        """The stored photo a caption describes, or None once it was purged or lost."""
        if record.image_purged or not self.image_store.exists(record.image_sha256):
            return None
        try:
            return await self.image_store.aread(record.image_sha256)
        except FileNotFoundError:  # purged between the check and the read
            return None

    # -- privacy ---------------------------------------------------------------------------------

    async def forget(self, *, platform: Platform | str, platform_user_id: str | int) -> ForgetReport:
        """Delete everything about this person: requests, captions, feedback, and photos only they sent."""
        async with self.session_factory.begin() as session:
            user = await users.get_user(session, platform=platform, platform_user_id=platform_user_id)
            if user is None:
                return ForgetReport(found=False)
            # Photo files go when this transaction commits (storage.retention arranges it).
            report = await users.forget_user(session, user_id=user.id, image_store=self.image_store)
            if Platform(platform) == Platform.WEB:  # a web visitor's chat is theirs alone: it goes too
                await users.delete_chat(session, platform=platform, platform_chat_id=platform_user_id)
        log.info("forgot a %s user: %d request(s), %d photo(s)", platform, report.requests, report.images)
        return report

    async def set_opt_out(self, *, platform: Platform | str, platform_user_id: str | int, opt_out: bool = True) -> bool:
        """Keep (False) or stop (True) using this person's photos and feedback for training.
        Captioning goes on either way. Returns the new setting."""
        async with self.session_factory.begin() as session:
            user = await users.get_or_create_user(session, platform=platform, platform_user_id=platform_user_id)
            await users.set_training_opt_out(session, user_id=user.id, opt_out=bool(opt_out))
        return bool(opt_out)

    async def stats(self, *, platform: Platform | str, platform_user_id: str | int) -> UserStats:
        async with self.session_factory() as session:
            user = await users.get_user(session, platform=platform, platform_user_id=platform_user_id)
            return UserStats() if user is None else await users.user_stats(session, user_id=user.id)

    async def stats_text(self, *, platform: Platform | str, platform_user_id: str | int) -> str:
        """The /stats answer on every platform: the serving model, the caption total, this person's numbers."""
        mine = await self.stats(platform=platform, platform_user_id=platform_user_id)
        overview = await self.model_overview()
        return texts.stats(
            model=overview.model,
            total_captions=overview.total_captions,
            requests=mine.requests,
            captions=mine.captions,
            pending=mine.pending,
            failed=mine.failed,
            ratings=mine.ratings,
            corrections=mine.corrections,
            opted_out=mine.opted_out,
        )

    def privacy_text(self) -> str:
        return texts.privacy(self.settings.retention_days)

    # -- chats and models ------------------------------------------------------------------------

    async def chat_autocaption(self, *, platform: Platform | str, platform_chat_id: str | int) -> bool:
        """Whether an admin turned on captioning of every photo in this chat."""
        async with self.session_factory() as session:
            return await users.chat_autocaption(session, platform=platform, platform_chat_id=platform_chat_id)

    async def set_chat_autocaption(
        self, *, platform: Platform | str, platform_chat_id: str | int, kind: ChatKind | str, enabled: bool
    ) -> None:
        async with self.session_factory.begin() as session:
            chat = await users.get_or_create_chat(
                session, platform=platform, platform_chat_id=platform_chat_id, kind=ChatKind(kind)
            )
            await users.set_chat_autocaption(session, chat_id=chat.id, enabled=enabled)

    async def model_overview(self) -> ModelOverview:
        """Which model answers, and how many captions were written (for /stats)."""
        async with self.session_factory() as session:
            name = await model_versions.serving_model_name(session)
            total = await captions.count_captions(session)
        return ModelOverview(name, total)
