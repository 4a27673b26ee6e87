"""The job contract between the bot side and the workers.

Payloads are tiny on purpose: the database row is the source of truth, a message only says
"look at request X". Losing or duplicating a message is therefore harmless: a duplicate finds the
row already claimed or finished and is skipped, and a lost one is found again by the recovery
sweeps (worker: stale pending requests; bot: undelivered results).

Both models are plain pydantic (no torch, no SQLAlchemy) so every process can import them.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

#: taskiq task names: the wire contract between processes (don't rename without a migration plan).
CAPTION_TASK = "captionbot.caption"
DELIVERY_TASK = "captionbot.deliver"

_PUBLIC_ID = re.compile(r"[0-9a-f]{32}")


class ErrorCode(StrEnum):
    """Why a request failed: stored in ``caption_requests.error_code`` and handed to the front end."""

    BAD_IMAGE = "bad_image"  # the photo can't be decoded, or is too large: retrying won't help
    MISSING_IMAGE = "missing_image"  # the stored photo is gone (purged, or the store was lost)
    CAPTION_ERROR = "caption_error"  # the model failed on it (after retries)


class CaptionJob(BaseModel):
    """bot side -> worker: caption the photo of request ``request_id``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    request_id: str = Field(pattern=_PUBLIC_ID.pattern, description="CaptionRequest.public_id")
    image_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Image.sha256 (the ImageStore key)")


class DeliveryNotice(BaseModel):
    """worker -> bot side: request ``request_id`` has a result (caption or failure) to send."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    request_id: str = Field(pattern=_PUBLIC_ID.pattern, description="CaptionRequest.public_id")


__all__ = ["CAPTION_TASK", "DELIVERY_TASK", "CaptionJob", "DeliveryNotice", "ErrorCode"]
