"""What the handlers need, kept in ``application.bot_data`` (PTB's place for shared objects)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from telegram.ext import Application, ContextTypes

from bot.telegram.config import TelegramConfig
from bot.telegram.progress import Progress
from captionbot.service import CaptionService

_KEY = "captionbot"


@dataclass(frozen=True)
class Deps:
    service: CaptionService
    config: TelegramConfig
    progress: Progress
    downloads: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(8))


def install(application: Application, deps: Deps) -> None:
    application.bot_data[_KEY] = deps


def deps(context: ContextTypes.DEFAULT_TYPE) -> Deps:
    return context.bot_data[_KEY]
