"""captionbot.storage.model_versions: registering checkpoints and promoting exactly one."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from captionbot.storage import model_versions as mv
from captionbot.storage.models import ModelStatus, ModelVersion
from tests.storage.helpers import Factory


async def test_promotion_leaves_exactly_one_promoted(session_factory: Factory) -> None:
    async with session_factory.begin() as s:
        v1 = await mv.register_model_version(s, name="v1", path="/m/v1.pt", sha256="1" * 64, metrics={"cider": 0.5})
        v2 = await mv.register_model_version(s, name="v2", path="/m/v2.pt", metrics={"cider": 0.6})
        assert v1.status == ModelStatus.CANDIDATE and await mv.current_model_version(s) is None
        again = await mv.register_model_version(s, name="v1", path="/m/v1.pt", metrics={"cider": 0.55})
        assert again.id == v1.id and again.metrics == {"cider": 0.55}
        with pytest.raises(ValueError):
            await mv.register_model_version(s, name="v1", path="/m/other.pt", sha256="2" * 64)
        await mv.promote_model_version(s, model_version_id=v1.id)
        assert (await mv.current_model_version(s)).id == v1.id  # type: ignore[union-attr]
        assert await mv.serving_model_name(s) == "v1"
    for _ in range(2):  # promoting the promoted one again changes nothing
        async with session_factory.begin() as s:
            await mv.promote_model_version(s, model_version_id=v2.id)
    async with session_factory() as s:
        statuses = {name: status for name, status in await s.execute(select(ModelVersion.name, ModelVersion.status))}
        assert statuses == {"v1": ModelStatus.RETIRED, "v2": ModelStatus.PROMOTED}
        current = await mv.current_model_version(s)
        assert current is not None and current.id == v2.id and current.promoted_at is not None
        assert (await mv.get_model_version(s, name="v1")).id == v1.id  # type: ignore[union-attr]
        assert await mv.get_model_version(s, name="v3") is None
        with pytest.raises(LookupError):
            await mv.promote_model_version(s, model_version_id=10_000)
    # The database itself refuses a second promoted version.
    with pytest.raises(IntegrityError):
        async with session_factory.begin() as s:
            await s.execute(update(ModelVersion).where(ModelVersion.id == v1.id).values(status=ModelStatus.PROMOTED))
