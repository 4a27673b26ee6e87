"""Model versions: register a checkpoint, promote one (the workers hot-swap to it), look them up."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from captionbot.storage.models import (
    Caption,
    ModelStatus,
    ModelVersion,
    utcnow,
)
from captionbot.storage.statements import FETCH


def checkpoint_sha256(path: str | Path) -> str | None:
    """The sha256 of a checkpoint file, or None when there is no such file. Plain hashlib (not
    captioner.checkpoint): promoting a version runs without torch. Blocking: call it in a thread."""
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


async def register_model_version(
    session: AsyncSession,
    *,
    name: str,
    path: str,
    sha256: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> ModelVersion:
    """Record a trained checkpoint as a ``candidate``; registering the same name again updates it.

    Raises ValueError if ``name`` is already registered for a different checkpoint (sha256).
    """
    existing = await session.scalar(select(ModelVersion).where(ModelVersion.name == name))
    if existing is None:
        version = ModelVersion(name=name, path=str(path), sha256=sha256, metrics=dict(metrics or {}))
        session.add(version)
        await session.flush()
        return version
    if sha256 and existing.sha256 and sha256 != existing.sha256:
        raise ValueError(f"model version {name!r} is already registered with another checkpoint")
    existing.path = str(path)
    existing.sha256 = sha256 or existing.sha256
    if metrics is not None:
        existing.metrics = dict(metrics)
    await session.flush()
    return existing


async def promote_model_version(session: AsyncSession, *, model_version_id: int) -> ModelVersion:
    """Make this version the one workers load; the previously promoted one becomes ``retired``.

    A partial unique index guarantees at most one promoted version even under concurrent promotions
    (the loser gets an IntegrityError). Raises LookupError for an unknown id.
    """
    version = await session.get(ModelVersion, model_version_id)
    if version is None:
        raise LookupError(f"no model version with id {model_version_id}")
    if version.status == ModelStatus.PROMOTED:
        return version
    # Retire first: the unique index must never see two promoted rows.
    await session.execute(
        update(ModelVersion)
        .where(ModelVersion.status == ModelStatus.PROMOTED, ModelVersion.id != model_version_id)
        .values(status=ModelStatus.RETIRED),
        execution_options=FETCH,
    )
    version.status = ModelStatus.PROMOTED
    version.promoted_at = utcnow()
    await session.flush()
    return version


async def current_model_version(session: AsyncSession) -> ModelVersion | None:
    """The promoted model version, or None (workers then use the shipped default checkpoint)."""
    return await session.scalar(select(ModelVersion).where(ModelVersion.status == ModelStatus.PROMOTED))


async def get_model_version(session: AsyncSession, *, name: str) -> ModelVersion | None:
    return await session.scalar(select(ModelVersion).where(ModelVersion.name == name))


async def serving_model_name(session: AsyncSession) -> str | None:
    """The promoted version's name, else the version that wrote the latest caption."""
    promoted = await current_model_version(session)
    if promoted is not None:
        return promoted.name
    return await session.scalar(
        select(ModelVersion.name)
        .join(Caption, Caption.model_version_id == ModelVersion.id)
        .order_by(Caption.id.desc())
        .limit(1)
    )
