"""Process wiring for ``captionbot run`` / ``worker`` / ``bot``: build the pieces, start, stop cleanly.

Roles:

``all`` (``captionbot run``)
    Everything in one process: database, queues, worker, service, chat adapters, metrics. Works on
    the embedded default (SQLite + ``memory://``), and there - since there is no separate deploy
    step - an outdated SQLite schema is upgraded at start (logged).
``worker`` (``captionbot worker``)
    Only the caption worker. Needs a shared broker (``redis://``).
``bot`` (``captionbot bot``)
    Chat adapters + :class:`~captionbot.service.CaptionService` + the delivery consumer. Needs a
    shared broker. No torch.

Chat adapters plug in through :func:`register_adapter_factory`. Telegram and Discord are
pre-registered *by name* (``bot.telegram.app:build`` / ``bot.discord.app:build``) and imported only
when their token is configured, so a deployment without one never imports its library. The web page
(``captionbot_cli.web_adapter:build``) runs when ``CAPTIONBOT_WEB_PORT`` is not 0 (the default, 8080). A factory is
called as ``factory(settings, service)`` and returns a :class:`ChatAdapter`: an object with
``async start()`` (register its delivery handler with ``service.register_delivery_handler`` there or
in the factory, then begin receiving updates) and ``async stop()``.

Shutdown (SIGTERM/SIGINT): adapters stop taking photos; the worker finishes the batch in flight and
hands the jobs still waiting back to the queue (released in the DB without spending an attempt);
consumers stop; connections close. Nothing here logs tokens, URLs with passwords, or image bytes.

This module imports no torch: the worker is imported inside :meth:`Stack.open` for the roles that
run one.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from captionbot.broker import Queues
from captionbot.errors import StartupError
from captionbot.observability import HealthServer
from captionbot.service import CaptionService
from captionbot.settings import Settings
from captionbot.storage.db import (
    SchemaOutdatedError,
    check_schema_current,
    create_engine,
    make_session_factory,
    upgrade_async,
)
from captionbot.storage.imagestore import ImageStore

if TYPE_CHECKING:
    from captioner.worker import CaptionWorker

log = logging.getLogger(__name__)

Role = Literal["all", "worker", "bot"]


class ChatAdapter(Protocol):
    """What an adapter factory returns."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


#: ``factory(settings, service) -> ChatAdapter``
AdapterFactory = Callable[[Settings, CaptionService], ChatAdapter]


#: What turns a front end on: said wherever nothing would be served (run, bot, doctor).
FRONT_END_SETTINGS = (
    "set TELEGRAM_BOT_TOKEN and/or DISCORD_BOT_TOKEN for the bots, or CAPTIONBOT_WEB_PORT for the web page"
)


@dataclass
class _AdapterSpec:
    factory: AdapterFactory | str  # a callable, or "module:function" imported when enabled
    enabled: Callable[[Settings], bool]


_ADAPTERS: dict[str, _AdapterSpec] = {
    "telegram": _AdapterSpec("bot.telegram.app:build", lambda s: s.telegram_bot_token is not None),
    "discord": _AdapterSpec("bot.discord.app:build", lambda s: s.discord_bot_token is not None),
    "web": _AdapterSpec("captionbot_cli.web_adapter:build", lambda s: s.web_port > 0),
}


def register_adapter_factory(
    name: str, factory: AdapterFactory | str, *, enabled: Callable[[Settings], bool] | None = None
) -> None:
    """Add or replace the chat adapter called ``name``.

    ``factory`` is ``factory(settings, service) -> ChatAdapter`` or a ``"module:function"`` string
    imported lazily. ``enabled(settings)`` says whether to run it (default: always; the built-in
    ``telegram``/``discord`` entries run when their token is set).
    """
    _ADAPTERS[name] = _AdapterSpec(factory, enabled or (lambda _s: True))


def unregister_adapter_factory(name: str) -> None:
    _ADAPTERS.pop(name, None)


def enabled_adapters(settings: Settings) -> list[str]:
    return [name for name, spec in _ADAPTERS.items() if spec.enabled(settings)]


def _build_adapter(name: str, settings: Settings, service: CaptionService) -> ChatAdapter:
    factory = _ADAPTERS[name].factory
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except ImportError as exc:
            raise RuntimeError(
                f"the {name} adapter ({module_name}) can't be imported: {exc}. "
                f"Install its extra: pip install 'captionbot[{name}]'"
            ) from exc
    return factory(settings, service)


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


async def prepare_database(url: str, *, auto_upgrade_sqlite: bool) -> AsyncEngine:
    """An engine on a schema at the code's revision; refuses an outdated one with a clear message."""
    engine = create_engine(url)
    try:
        await check_schema_current(engine)
    except SchemaOutdatedError as exc:
        if not (auto_upgrade_sqlite and _is_sqlite(url)):
            await engine.dispose()
            raise StartupError(str(exc)) from None
        log.warning(
            "embedded SQLite database: upgrading its schema now (%s); `captionbot run` has no separate deploy step", exc
        )
        await engine.dispose()
        await upgrade_async(url)
        engine = create_engine(url)
        await check_schema_current(engine)
    return engine


def model_threads(setting: int, role: str) -> int:
    """Threads for the model (0 = leave torch's default). ``run`` also hosts the bots, intake and
    the database: on a CPU, giving the model every core makes both sides wait for each other
    (measured in docs/benchmarks.md), so it leaves one core to them."""
    if setting:
        return setting
    cores = os.cpu_count() or 1
    return max(1, cores - 1) if role == "all" and cores > 1 else 0


@dataclass
class Stack:
    """The running pieces of one process (tests and the benchmark use it too)."""

    settings: Settings
    role: Role
    db: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    image_store: ImageStore
    queues: Queues
    service: CaptionService | None = None
    worker: CaptionWorker | None = None
    adapters: dict[str, ChatAdapter] = field(default_factory=dict)
    health: HealthServer | None = None
    health_port: int | None = None

    @classmethod
    async def open(
        cls,
        settings: Settings,
        role: Role,
        *,
        auto_upgrade_sqlite: bool | None = None,
        adapters: bool = True,
        only_adapters: list[str] | None = None,
        worker_overrides: dict[str, Any] | None = None,
        engine_loader: Callable[[Path], Any] | None = None,
        service_options: dict[str, Any] | None = None,
        before_start: Callable[[Stack], None] | None = None,
    ) -> Stack:
        """Build and start everything ``role`` needs. ``before_start(stack)`` runs after the pieces
        exist but before any queue is consumed (tests register delivery handlers there).
        ``only_adapters``: run just these of the enabled front ends (``captionbot web``: the page)."""
        queues = Queues(settings.broker_url, caption_batch_hint=settings.batch_size)
        if role != "all" and not queues.durable:
            raise StartupError(
                f"`captionbot {role}` needs a shared broker (CAPTIONBOT_BROKER_URL=redis://...); "
                "memory:// only works with `captionbot run` (everything in one process)"
            )
        if auto_upgrade_sqlite is None:
            auto_upgrade_sqlite = role == "all"
        db = await prepare_database(settings.db_url, auto_upgrade_sqlite=auto_upgrade_sqlite)
        session_factory = make_session_factory(db)
        stack = cls(settings, role, db, session_factory, ImageStore(settings.photos_dir), queues)
        try:
            await stack._start(
                adapters, only_adapters, worker_overrides or {}, engine_loader, service_options or {}, before_start
            )
        except BaseException:
            await stack.close()
            raise
        return stack

    async def _start(
        self,
        with_adapters: bool,
        only_adapters: list[str] | None,
        worker_overrides: dict[str, Any],
        engine_loader: Callable[[Path], Any] | None,
        service_options: dict[str, Any],
        before_start: Callable[[Stack], None] | None,
    ) -> None:
        s = self.settings
        if self.role in ("all", "worker"):
            from captioner.worker import CaptionWorker, WorkerOptions  # torch: only where a worker runs

            self.worker = CaptionWorker(
                options=WorkerOptions.from_settings(s, self.queues, **worker_overrides),
                session_factory=self.session_factory,
                image_store=self.image_store,
                queues=self.queues,
                model_path=s.model_path,
                device=s.device,
                engine_loader=engine_loader,
                int8_decoder=s.cpu_int8_decoder,
                torch_threads=model_threads(s.torch_threads, self.role),
            )
            await self.worker.start()
        if self.role in ("all", "bot"):
            self.service = CaptionService(s, self.session_factory, self.image_store, self.queues, **service_options)
            if with_adapters:
                names = [n for n in enabled_adapters(s) if only_adapters is None or n in only_adapters]
                if not names:
                    log.warning("no front end enabled: %s", FRONT_END_SETTINGS)
                for name in names:
                    self.adapters[name] = _build_adapter(name, s, self.service)
        if before_start is not None:
            before_start(self)
        await self.queues.start(
            consume_captions=self.worker is not None,
            consume_deliveries=self.service is not None,
            caption_concurrency=max(2 * s.batch_size, 8),
        )
        if self.worker is not None:
            await self.worker.start_recovery()
        if self.service is not None:
            await self.service.start()
        for name, adapter in self.adapters.items():
            await adapter.start()
            log.info("%s adapter started", name)
        if s.metrics_port:
            self.health = HealthServer(
                s.metrics_port,
                checks={"db": self._db_ok, "broker": self.queues.ping},
                info={
                    "role": lambda: self.role,
                    "model_version": lambda: self.worker.model_version if self.worker else None,
                },
                queue_depth=self._queue_depth,
            )
            self.health_port = await self.health.start()
        log.info(
            "captionbot %s running: %s, database %s",
            self.role,
            self.queues.describe(),
            make_url(s.db_url).get_backend_name(),
        )

    async def _db_ok(self) -> bool:
        async with self.db.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def _queue_depth(self) -> int:
        from captionbot.storage.jobs import count_pending

        async with self.session_factory() as session:
            return await count_pending(session)

    async def close(self, grace: float = 30.0) -> None:
        """Stop in dependency order; safe to call on a half-started stack."""
        for name, adapter in list(self.adapters.items()):
            try:
                await adapter.stop()
            except Exception:
                log.warning("stopping the %s adapter failed", name, exc_info=True)
        self.adapters.clear()
        if self.health is not None:
            await self.health.stop()
            self.health = None
        if self.worker is not None:
            await self.worker.stop()  # batch in flight finishes; waiting jobs are handed back
        await self.queues.stop_consuming(grace)
        if self.service is not None:
            await self.service.stop()
        await self.queues.stop(grace)
        await self.db.dispose()


def _quiet_libraries() -> None:
    # taskiq logs every task at INFO; keep our logs readable. aiosqlite's DEBUG lines carry SQL
    # parameters (captions, corrections, text read in photos): personal data stays out of logs.
    # Alembic's schema check says "Context impl SQLiteImpl" at INFO: noise before any real message.
    for name in ("taskiq", "taskiq.receiver.receiver", "aiosqlite", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


async def serve(settings: Settings, role: Role, *, stop: asyncio.Event | None = None, **open_kwargs: Any) -> None:
    """Run ``role`` until SIGTERM/SIGINT (or ``stop`` is set), then shut down cleanly."""
    _quiet_libraries()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    stack = await Stack.open(settings, role, **open_kwargs)
    learner = _start_learner(stack, stop) if role == "all" and settings.learn_in_run else None
    try:
        await stop.wait()
        log.info("stopping (finishing the batch in flight)")
        if learner is not None:
            await learner  # returns at once; a round in progress is given up (its thread ends on its own)
    finally:
        if learner is not None and not learner.done():
            learner.cancel()
        await stack.close()
    log.info("stopped")


def _start_learner(stack: Stack, stop: asyncio.Event) -> asyncio.Task[bool]:
    """CAPTIONBOT_LEARN_IN_RUN: learning rounds in this process too; each round runs in a thread
    (asyncio.to_thread), so the bots and the worker keep answering meanwhile."""
    from captionbot.service import LearningService
    from training.learning.round import run_round  # torch: only when asked for
    from training.learning.schedule import learner_loop

    service = LearningService(stack.settings, stack.session_factory, stack.image_store)
    log.info("learning rounds run in this process too (CAPTIONBOT_LEARN_IN_RUN)")
    return asyncio.create_task(learner_loop(stack.settings, service, run_round=run_round, stop=stop))


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _quiet_libraries()


def run_blocking(settings: Settings, role: Role, **open_kwargs: Any) -> int:
    """Entry point for the CLI: returns a process exit code (2 = configuration problem)."""
    configure_logging(settings.log_level)
    try:
        asyncio.run(serve(settings, role, **open_kwargs))
    except StartupError as exc:
        log.error("%s", exc)
        return 2
    return 0


__all__ = [
    "AdapterFactory",
    "ChatAdapter",
    "Role",
    "Stack",
    "StartupError",
    "configure_logging",
    "enabled_adapters",
    "prepare_database",
    "register_adapter_factory",
    "run_blocking",
    "serve",
    "unregister_adapter_factory",
]
