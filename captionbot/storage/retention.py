"""Photo files: deleted only after the transaction that removed their rows commits, and purged
after the retention period (photos with feedback usable for training are kept, as the privacy text
says)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import event, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from captionbot.storage.captions import usable_feedback
from captionbot.storage.imagestore import ImageStore
from captionbot.storage.models import (
    Caption,
    CaptionRequest,
    Feedback,
    Image,
    RequestStatus,
    utcnow,
)
from captionbot.storage.statements import chunks

log = logging.getLogger(__name__)


# Photo files to delete once the transaction that removed their rows commits (see forget_user).
_FILES_AFTER_COMMIT = "captionbot.files_after_commit"


@event.listens_for(Session, "after_commit")
def _delete_files_after_commit(session: Session) -> None:
    for store, digest in session.info.pop(_FILES_AFTER_COMMIT, ()):
        try:
            store.delete(digest)
        except OSError:  # the rows are gone either way; a leftover file is only disk space
            log.warning("could not delete photo %s from %r", digest, store, exc_info=True)


@event.listens_for(Session, "after_rollback")
def _keep_files_after_rollback(session: Session) -> None:
    session.info.pop(_FILES_AFTER_COMMIT, None)


def delete_files_after_commit(session: AsyncSession, store: ImageStore, digests: Iterable[str]) -> None:
    session.sync_session.info.setdefault(_FILES_AFTER_COMMIT, []).extend((store, d) for d in digests)


async def purge_expired_images(
    session: AsyncSession, *, older_than: datetime, image_store: ImageStore, keep_for_training: bool = True
) -> list[str]:
    """Delete photo files whose requests are all delivered and older than ``older_than``.

    The image rows stay (captions and feedback refer to them) with ``purged_at`` set, and the text
    read in a purged photo goes with it (it is the photo's content, not the model's words). With
    ``keep_for_training``, photos that have training-usable feedback are kept. Files go after
    commit. Returns the digests purged.
    """
    still_needed = exists().where(
        CaptionRequest.image_id == Image.id,
        or_(CaptionRequest.created_at >= older_than, CaptionRequest.status != RequestStatus.DELIVERED),
    )
    stmt = select(Image.id, Image.sha256).where(Image.purged_at.is_(None), Image.created_at < older_than, ~still_needed)
    if keep_for_training:
        # Only feedback that training_examples would use keeps a photo: a thumbs-down alone doesn't.
        trainable = usable_feedback(Feedback.id, min_rating=1).where(CaptionRequest.image_id == Image.id).exists()
        stmt = stmt.where(~trainable)
    rows = (await session.execute(stmt)).all()
    now = utcnow()
    for chunk in chunks([row.id for row in rows]):
        await session.execute(
            update(Image).where(Image.id.in_(chunk)).values(purged_at=now),
            execution_options={"synchronize_session": False},
        )
        of_these = select(CaptionRequest.id).where(CaptionRequest.image_id.in_(chunk))
        await session.execute(
            update(Caption)
            .where(Caption.request_id.in_(of_these), Caption.photo_text.is_not(None))
            .values(photo_text=None),
            execution_options={"synchronize_session": False},
        )
    digests = [row.sha256 for row in rows]
    delete_files_after_commit(session, image_store, digests)
    return digests
