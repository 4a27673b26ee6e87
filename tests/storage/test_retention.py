"""captionbot.storage.retention: delivered photos are purged after the retention period, unless kept
for training; their files go only once the transaction commits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from captionbot.storage import captions, deliveries, jobs, retention
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.models import Caption
from tests.storage.helpers import Factory, captioned, seed


async def test_retention_purges_delivered_photos_not_needed_for_training(
    session_factory: Factory, image_store: ImageStore
) -> None:
    kept, kept_caption = await captioned(session_factory, image_store, user="k", photo=b"rated", photo_text="KEEP")
    gone, gone_caption = await captioned(session_factory, image_store, user="g", photo=b"unrated", photo_text="EXIT")
    busy = await seed(session_factory, image_store, user="q", photo=b"queued")
    async with session_factory.begin() as s:
        await captions.set_feedback(s, caption_id=kept_caption, user_id=kept.user_id, rating=1)
        for seeded in (kept, gone):
            await deliveries.mark_delivered(s, request_id=seeded.request_id)
    yesterday, tomorrow = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)
    async with session_factory.begin() as s:
        assert await retention.purge_expired_images(s, older_than=yesterday, image_store=image_store) == []
        assert await retention.purge_expired_images(s, older_than=tomorrow, image_store=image_store) == [gone.sha256]
    assert not image_store.exists(gone.sha256)
    assert image_store.exists(kept.sha256) and image_store.exists(busy.sha256)
    async with session_factory() as s:  # the text read in the photo goes with the photo; the caption stays
        assert (await s.get(Caption, gone_caption)).photo_text is None  # type: ignore[union-attr]
        assert (await s.get(Caption, kept_caption)).photo_text == "KEEP"  # type: ignore[union-attr]
    async with session_factory.begin() as s:
        assert await retention.purge_expired_images(s, older_than=tomorrow, image_store=image_store) == []  # once
        # The same photo uploaded again is present again.
        image_store.put(b"unrated")
        image = await jobs.add_image(s, sha256=gone.sha256, size_bytes=7, width=4, height=3, mime="image/jpeg")
        assert image.id == gone.image_id and image.purged_at is None
