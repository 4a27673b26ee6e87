"""Which model the worker serves, and swapping in a newly promoted one without dropping a job.

At start the worker serves the promoted ModelVersion if there is one (and it loads), else its
configured checkpoint, registered as a ModelVersion so that every caption names the model that
wrote it.

Between batches the worker checks (every ``reload_check_s``) which ModelVersion is promoted in the
database; when it changes, the new checkpoint is loaded in a thread while the old engine keeps
serving, and swapped in before the next batch - no job is dropped. A checkpoint whose sha256 is not
the one registered (replaced or corrupted since) is refused with :class:`ModelFileChangedError`; a
version that failed to load is not tried again until another one is promoted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from captionbot.observability import METRICS, one_line
from captionbot.storage import model_versions
from captioner.checkpoint import file_sha256
from captioner.inference import CaptionEngine
from captioner.worker.options import EngineLoader

log = logging.getLogger(__name__)


class ModelFileChangedError(RuntimeError):
    """A promoted model's file is not the file that was registered."""


@dataclass(frozen=True)
class LoadedModel:
    engine: CaptionEngine
    version_id: int  # ModelVersion.id: every caption records it
    name: str


class ModelManager:
    """The model being served (:attr:`current`) and the background load of a newly promoted one."""

    def __init__(
        self,
        *,
        session_factory: async_sessionmaker[AsyncSession],
        load_engine: EngineLoader,
        model_path: Path,
        reload_check_s: float,
    ) -> None:
        self.session_factory = session_factory
        self.model_path = model_path
        self.reload_check_s = reload_check_s
        self._load_engine = load_engine
        self.current: LoadedModel | None = None
        self._pending_load: asyncio.Task[LoadedModel] | None = None
        self._last_reload_check = 0.0
        self._failed_version_id: int | None = None
        self._pending_version_id: int | None = None

    @property
    def name(self) -> str | None:
        return self.current.name if self.current else None

    @property
    def loading(self) -> bool:
        """A promoted version is being loaded in the background (swapped in before a later batch)."""
        return self._pending_load is not None

    async def start(self) -> LoadedModel:
        """Load the model (the promoted one if any) and warm it up with one caption."""
        self.current = await self._initial_model()
        await asyncio.to_thread(self.current.engine.caption, [PILImage.new("RGB", (32, 32))], beam_size=1)
        return self.current

    async def stop(self) -> None:
        """Abandon a background load still running."""
        task, self._pending_load = self._pending_load, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _initial_model(self) -> LoadedModel:
        async with self.session_factory() as session:
            promoted = await model_versions.current_model_version(session)
        if promoted is not None:
            try:
                return await self._load(promoted.id, promoted.name, Path(promoted.path), promoted.sha256)
            except Exception:
                log.exception(
                    "promoted model %s (%s) failed to load; using %s", promoted.name, promoted.path, self.model_path
                )
                self._failed_version_id = promoted.id
        engine = await asyncio.to_thread(self._load_engine, self.model_path)
        sha = await asyncio.to_thread(file_sha256, self.model_path)
        async with self.session_factory.begin() as session:
            version = await model_versions.get_model_version(session, name=engine.version)
            if version is None or version.sha256 in (None, sha):
                version = await model_versions.register_model_version(
                    session, name=engine.version, path=str(self.model_path), sha256=sha
                )
            else:  # same name, another file: keep both apart (captions must name what made them)
                version = await model_versions.register_model_version(
                    session, name=f"{engine.version}-{sha[:12]}", path=str(self.model_path), sha256=sha
                )
        if promoted is None:
            await self._record_serving(version.id, version.name)
        return LoadedModel(engine, version.id, version.name)

    async def _record_serving(self, version_id: int, name: str) -> None:
        """Nothing was promoted, so this model answers every caption: the record says so
        (`captionbot model list` shows it serving, and since when)."""
        try:
            async with self.session_factory.begin() as session:
                if await model_versions.current_model_version(session) is None:
                    await model_versions.promote_model_version(session, model_version_id=version_id)
                    log.info("no model version was promoted: %s serves, so it is promoted", name)
        except IntegrityError:  # another worker, starting at the same moment, promoted one first
            log.info("another worker promoted a model version first")

    async def _load(self, version_id: int, name: str, path: Path, sha256: str | None = None) -> LoadedModel:
        """Load a registered version; a file whose sha256 differs from the registered one (replaced or
        corrupted since it was promoted) is refused, so captions never name a model that didn't write them."""
        if sha256:
            actual = await asyncio.to_thread(file_sha256, path)
            if actual != sha256:
                raise ModelFileChangedError(
                    f"{path} has sha256 {actual[:12]}…, but {name} was registered as {sha256[:12]}…"
                )
        engine = await asyncio.to_thread(self._load_engine, path)
        return LoadedModel(engine, version_id, name)

    async def reload_if_promoted_changed(self, *, wait: bool = False, force_check: bool = False) -> bool:
        """Called before each batch: swap in a finished background load; start one (at most every
        ``reload_check_s``) when the promoted version changed. ``wait=True`` (tests, tools) checks
        now and waits for the load. Returns True when the serving model changed."""
        swapped = self._swap_if_loaded()
        now = time.monotonic()
        due = force_check or wait or now - self._last_reload_check >= self.reload_check_s
        if self._pending_load is None and due:
            self._last_reload_check = now
            try:
                async with self.session_factory() as session:
                    promoted = await model_versions.current_model_version(session)
            except Exception as exc:
                log.warning("could not check the promoted model (%s)", one_line(exc))
                log.debug("promoted model check failure", exc_info=True)
                promoted = None
            current = self.current.version_id if self.current else None
            if promoted is not None and promoted.id not in (current, self._failed_version_id):
                log.info("model %s was promoted; loading it in the background", promoted.name)
                self._pending_version_id = promoted.id
                self._pending_load = asyncio.create_task(
                    self._load(promoted.id, promoted.name, Path(promoted.path), promoted.sha256)
                )
        if wait and self._pending_load is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._pending_load)
            swapped = self._swap_if_loaded() or swapped
        return swapped

    def _swap_if_loaded(self) -> bool:
        task = self._pending_load
        if task is None or not task.done():
            return False
        self._pending_load = None
        try:
            loaded = task.result()
        except Exception as exc:
            log.error("loading the promoted model failed (%s: %s); keeping %s", type(exc).__name__, exc, self.name)
            self._failed_version_id = self._pending_version_id  # not again until another is promoted
            return False
        old, self.current = self.name, loaded
        METRICS.model_reloads.inc()
        log.info("now serving model %s (was %s)", loaded.name, old)
        return True
