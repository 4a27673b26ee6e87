"""The Telegram adapter: one place that wires python-telegram-bot to the CaptionService.

``captionbot_cli.runtime`` calls :func:`build` (``"telegram" -> "bot.telegram.app:build"``) before the
queues start, so the delivery handler is registered in time; then ``await adapter.start()``.

* API base URL from ``CAPTIONBOT_TELEGRAM_API_BASE_URL`` (a self-hosted Bot API server works, and
  lifts the 20 MB download limit);
* outgoing calls go through :class:`~telegram.ext.AIORateLimiter` (Telegram's global and per-group
  message limits; on 429 it waits ``retry_after`` and retries, up to ``max_retries``), tuned in
  :mod:`bot.telegram.ratelimit` to count only messages;
* long polling by default; webhook mode (PTB's server on the listen address, at the path of the
  public webhook URL, checking ``X-Telegram-Bot-Api-Secret-Token``) when configured;
* updates are handled concurrently, so one slow download doesn't hold up everyone else.

The token never reaches the logs (see :mod:`bot.telegram.logsafety`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import Bot, BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeDefault
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, Defaults
from telegram.request import HTTPXRequest

from bot.telegram import handlers, logsafety
from bot.telegram.acks import AckAfterHandlingBot, HandledUpdates, ReportingApplication
from bot.telegram.config import TelegramConfig
from bot.telegram.delivery import TelegramDelivery
from bot.telegram.deps import Deps, install
from bot.telegram.progress import Progress
from bot.telegram.ratelimit import MessageRateLimiter
from captionbot import texts
from captionbot.errors import StartupError
from captionbot.service import CaptionService
from captionbot.settings import Settings

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]  # edits: a corrected correction


class AdapterNotRunningError(RuntimeError):
    """A delivery arrived while the adapter is stopped; the service will retry it later."""


def build_application(config: TelegramConfig) -> Application:
    """PTB's Application, acknowledging each update only once it is handled (:mod:`bot.telegram.acks`)."""
    handled = HandledUpdates()
    bot = AckAfterHandlingBot(
        config.token,
        base_url=config.base_url,
        base_file_url=config.base_file_url,
        # What ApplicationBuilder would give its own bot: a pool wide enough for concurrent updates.
        request=HTTPXRequest(connection_pool_size=max(8, 2 * config.concurrent_updates)),
        get_updates_request=HTTPXRequest(),
        defaults=Defaults(allow_sending_without_reply=True),
        rate_limiter=MessageRateLimiter(max_retries=config.max_retries),
        handled=handled,
    )
    return (
        Application.builder()
        .bot(bot)
        .application_class(ReportingApplication, kwargs={"handled": handled})
        .concurrent_updates(config.concurrent_updates)
        .build()
    )


class TelegramAdapter:
    """``start()`` / ``stop()`` for the runtime; owns the PTB Application."""

    def __init__(self, config: TelegramConfig, service: CaptionService) -> None:
        self.config = config
        self.service = service
        self._unprotect_logs = logsafety.protect(config.token)  # before PTB logs its URLs
        self.application = build_application(config)
        self.progress = Progress(config, service, self._ready_bot)
        install(self.application, Deps(service, config, self.progress, asyncio.Semaphore(config.concurrent_downloads)))
        handlers.register(self.application)
        self.delivery = TelegramDelivery(self._ready_bot, self.progress)
        service.register_delivery_handler("telegram", self.delivery)
        self._init_lock = asyncio.Lock()
        self._initialized = False
        self._stopped = False

    @property
    def bot(self) -> Bot:
        return self.application.bot

    async def _initialize(self) -> None:
        """getMe and HTTP clients, once; also called by an early delivery (the service delivers
        results left from before a restart before the adapter is started)."""
        async with self._init_lock:
            if self._initialized:
                return
            try:
                await self.application.initialize()
            except InvalidToken:
                raise StartupError("Telegram rejected TELEGRAM_BOT_TOKEN (check the token)") from None
            self._initialized = True

    async def _ready_bot(self) -> Bot:
        if self._stopped:
            raise AdapterNotRunningError("the Telegram adapter is stopped")
        await self._initialize()
        return self.application.bot

    async def start(self) -> None:
        await self._initialize()
        await self._register_commands()
        updater = self.application.updater
        assert updater is not None  # the builder always makes one
        if self.config.use_webhook:
            await updater.start_webhook(
                listen=self.config.webhook_listen,
                port=self.config.webhook_port,
                url_path=self.config.webhook_path,
                webhook_url=self.config.webhook_url,
                secret_token=self.config.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            await updater.start_polling(timeout=self.config.poll_timeout_s, allowed_updates=ALLOWED_UPDATES)
        await self.application.start()
        log.info(
            "Telegram bot @%s running (%s)", self.bot.username, "webhook" if self.config.use_webhook else "long polling"
        )

    async def _register_commands(self) -> None:
        """The command menu; not fatal if Telegram refuses (the commands work regardless)."""
        try:
            await self.bot.set_my_commands(
                [BotCommand(c, d) for c, d in texts.TELEGRAM_PRIVATE_COMMANDS], scope=BotCommandScopeDefault()
            )
            await self.bot.set_my_commands(
                [BotCommand(c, d) for c, d in texts.TELEGRAM_GROUP_COMMANDS], scope=BotCommandScopeAllGroupChats()
            )
        except TelegramError as exc:
            log.warning("setMyCommands failed (%s); the command menu may be out of date", type(exc).__name__)

    async def stop(self) -> None:
        """Stop taking updates; deliveries from now on are left for the next start."""
        self._stopped = True
        try:
            updater = self.application.updater
            if updater is not None and updater.running:
                await updater.stop()
            if self.application.running:
                await self.application.stop()
            await self.progress.close()
            if self._initialized:
                await self.application.shutdown()
        finally:
            self._unprotect_logs()


def build(settings: Settings, service: CaptionService, **overrides: Any) -> TelegramAdapter:
    """The runtime's adapter factory. ``overrides`` replace :class:`TelegramConfig` fields (tests)."""
    return TelegramAdapter(TelegramConfig.from_settings(settings, **overrides), service)
