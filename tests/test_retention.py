"""Photos are deleted after the retention period the privacy text promises, except those kept for
training (a correction or a positive rating from users who did not opt out)."""

import hashlib
from datetime import timedelta

import pytest

from captionbot.storage import jobs
from captionbot.storage.models import RequestStatus, utcnow
from tests.tiny_model import (
    DeliveryRecorder,
    make_settings,
    open_pipeline,
    png_bytes,
    until,
)
from tests.tiny_model import submit as submit_photo

pytestmark = pytest.mark.timeout(60)


async def _all_delivered(stack, ids) -> bool:
    async with stack.session_factory() as session:
        for rid in ids:
            if (await jobs.get_request_by_public_id(session, public_id=rid)).status != RequestStatus.DELIVERED:
                return False
    return True


async def test_retention_deletes_old_photos_but_keeps_ones_kept_for_training(backend, tmp_path):
    rec = DeliveryRecorder()
    photos = {colour: png_bytes(colour) for colour in ("red", "blue", "green", "white")}
    async with open_pipeline(make_settings(tmp_path, backend, retention_days=1), recorder=rec) as stack:
        service = stack.service
        subs = {
            colour: await submit_photo(stack, data, user=str(i), source_message_id=str(100 + i))
            for i, (colour, data) in enumerate(photos.items())
        }
        await rec.wait_for(4)
        await until(lambda: _all_delivered(stack, [s.request_id for s in subs.values()]))
        caption = {d.request_id: d.caption_id for d in rec.deliveries}

        def cid(colour):
            return caption[subs[colour].request_id]

        await service.rate(caption_id=cid("blue"), platform="telegram", platform_user_id="1", rating=1)
        await service.rate(caption_id=cid("green"), platform="telegram", platform_user_id="2", rating=-1)
        await service.correct(caption_id=cid("white"), platform="telegram", platform_user_id="3", text="a white card")
        await service.set_opt_out(platform="telegram", platform_user_id="3", opt_out=True)

        assert await service.purge_expired_photos() == 0  # nothing is a day old yet
        service.now = lambda: utcnow() + timedelta(days=2)
        assert await service.purge_expired_photos() == 3
        left = set(stack.image_store)
        # Kept: blue (liked). Gone: red (no feedback), green (only a thumbs-down), white (opted out).
        assert left == {hashlib.sha256(photos["blue"]).hexdigest()}
        assert await service.purge_expired_photos() == 0  # idempotent
        assert "1 days" in service.privacy_text() or "1 day" in service.privacy_text()


async def test_retention_zero_keeps_everything(backend, tmp_path):
    rec = DeliveryRecorder()
    async with open_pipeline(make_settings(tmp_path, backend, retention_days=0), recorder=rec) as stack:
        await submit_photo(stack)
        await rec.wait_for(1)
        stack.service.now = lambda: utcnow() + timedelta(days=400)
        assert await stack.service.purge_expired_photos() == 0
        assert len(set(stack.image_store)) == 1
