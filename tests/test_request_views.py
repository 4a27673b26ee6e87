"""What a page shows a person about their own requests (CaptionService.request_view and friends),
and what the moderator's page reads (ModerationService), on both deployments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from captionbot.service import ModerationService
from captionbot.service.moderation import PromoteError
from tests.tiny_model import (
    DeliveryRecorder,
    make_banded_checkpoint,
    make_settings,
    open_pipeline,
    png_bytes,
    submit,
)

pytestmark = pytest.mark.slow


async def _captioned(stack: Any, recorder: DeliveryRecorder, *, user: str, color: str = "red") -> str:
    sub = await submit(stack, png_bytes(color), user=user, chat=user, platform="web")
    await recorder.wait_for(len(recorder.deliveries) + 1)
    return str(sub.request_id)


async def test_a_person_sees_their_own_request_with_caption_labels_and_attention(tmp_path: Path, backend: Any) -> None:
    settings = make_settings(tmp_path, backend, model_path=make_banded_checkpoint("unsure"))
    recorder = DeliveryRecorder()
    async with open_pipeline(settings, recorder=recorder, platform="web") as stack:
        request_id = await _captioned(stack, recorder, user="visitor-a")
        view = await stack.service.request_view(request_id, platform="web", platform_user_id="visitor-a")
        assert view is not None and view.state == "done" and view.finished
        assert view.caption_id is not None and view.text
        # The honest wording people get, with the tagger's plain word for an unsure caption.
        assert view.answer == "I can't describe this photo well. It may show a cat."
        assert view.labels and view.labels[0].word == "cat" and 0.0 < view.labels[0].p <= 1.0
        att = view.attention
        assert att is not None and att.side > 0 and len(att.words) == len(att.maps) == len(view.text.split())
        assert all(len(m) == att.side * att.side and max(m) == pytest.approx(1.0) for m in att.maps)
        photo = await stack.service.request_photo(request_id, platform="web", platform_user_id="visitor-a")
        assert photo == (png_bytes("red"), "image/png")
        # Someone else (or the same id on another platform) gets nothing.
        assert await stack.service.request_view(request_id, platform="web", platform_user_id="visitor-b") is None
        assert await stack.service.request_view(request_id, platform="telegram", platform_user_id="visitor-a") is None
        assert await stack.service.request_photo(request_id, platform="web", platform_user_id="visitor-b") is None
        mine = await stack.service.recent_requests(platform="web", platform_user_id="visitor-a")
        assert [v.request_id for v in mine] == [request_id]


async def test_feedback_and_flags_show_on_the_view_and_the_moderators_lists(tmp_path: Path, backend: Any) -> None:
    settings = make_settings(tmp_path, backend)
    recorder = DeliveryRecorder()
    async with open_pipeline(settings, recorder=recorder, platform="web") as stack:
        first = await _captioned(stack, recorder, user="v1")
        second = await _captioned(stack, recorder, user="v2", color="blue")
        service = stack.service
        v1 = await service.request_view(first, platform="web", platform_user_id="v1")
        v2 = await service.request_view(second, platform="web", platform_user_id="v2")
        assert v1 is not None and v2 is not None and v1.caption_id and v2.caption_id
        await service.rate(caption_id=v1.caption_id, platform="web", platform_user_id="v1", rating=1)
        await service.correct(caption_id=v1.caption_id, platform="web", platform_user_id="v1", text="a red square")
        await service.flag(caption_id=v2.caption_id, platform="web", platform_user_id="v2")
        await service.flag(caption_id=v2.caption_id, platform="web", platform_user_id="v1")
        v1 = await service.request_view(first, platform="web", platform_user_id="v1")
        assert v1 is not None and (v1.rating, v1.correction, v1.flagged) == (1, "a red square", False)
        v2 = await service.request_view(second, platform="web", platform_user_id="v2")
        assert v2 is not None and v2.flagged and v2.rating is None

        moderation = ModerationService(settings, stack.session_factory, stack.image_store)
        [flagged] = await moderation.flagged()
        assert (flagged.caption_id, flagged.flags) == (v2.caption_id, 2)
        # A report is not training feedback: only the correction waits for review.
        assert [r.correction for r in await moderation.corrections_to_review()] == ["a red square"]
        people = {p.platform: p for p in await moderation.people()}
        assert people["web"].ratings + people["web"].corrections + people["web"].flags >= 1
        by_count = sorted((p.ratings, p.corrections, p.flags) for p in await moderation.people())
        assert by_count == [(0, 0, 1), (1, 1, 1)]
        assert await moderation.clear_flags([v2.caption_id]) == 2
        assert await moderation.flagged() == []
        points = await moderation.rating_over_time()
        assert [(p.ratings, p.mean) for p in points] == [(1, 1.0)]


async def test_promote_by_name_checks_the_checkpoint(tmp_path: Path, backend: Any) -> None:
    from captionbot.storage import model_versions
    from tests.tiny_model import make_tiny_checkpoint

    settings = make_settings(tmp_path, backend)
    async with open_pipeline(settings) as stack:
        moderation = ModerationService(settings, stack.session_factory, stack.image_store)
        path = make_tiny_checkpoint(tmp_path / "v2.pt", version="tiny-v2", seed=1)
        async with stack.session_factory.begin() as session:
            await model_versions.register_model_version(session, name="tiny-v2", path=str(path), sha256=None)
        promoted = await moderation.promote("tiny-v2")
        assert promoted.name == "tiny-v2" and (await moderation.promoted_model()) == promoted
        with pytest.raises(PromoteError, match="no model version called 'nope'"):
            await moderation.promote("nope")
        path.unlink()
        with pytest.raises(PromoteError, match="checkpoint file is missing"):
            await moderation.promote("tiny-v2")


async def test_forgetting_a_web_visitor_leaves_no_row_with_their_id(tmp_path: Path, backend: Any) -> None:
    from sqlalchemy import func, select

    from captionbot.storage.models import Chat, User

    settings = make_settings(tmp_path, backend)
    recorder = DeliveryRecorder()
    async with open_pipeline(settings, recorder=recorder, platform="web") as stack:
        request_id = await _captioned(stack, recorder, user="visitor-x")
        report = await stack.service.forget(platform="web", platform_user_id="visitor-x")
        assert report.requests == 1 and report.images == 1
        assert await stack.service.request_view(request_id, platform="web", platform_user_id="visitor-x") is None
        async with stack.session_factory() as session:
            users = await session.scalar(select(func.count()).where(User.platform_user_id == "visitor-x"))
            chats = await session.scalar(select(func.count()).where(Chat.platform_chat_id == "visitor-x"))
        assert (users, chats) == (0, 0)
