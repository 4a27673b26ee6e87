"""The Telegram adapter's configuration, derived once from :class:`captionbot.settings.Settings`.

Everything the adapter needs is read here, so the rest of the package never touches the settings
object (or the raw token) directly.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from captionbot.settings import Settings

PUBLIC_API_BASE_URL = "https://api.telegram.org/bot"
#: Bots may download files up to 20 MB through the public Bot API (a self-hosted server lifts it).
PUBLIC_DOWNLOAD_LIMIT = 20 * 1024 * 1024

_BOT_SUFFIX = re.compile(r"/bot(\{token\})?$")


def api_urls(base_url: str) -> tuple[str, str]:
    """``(base_url, base_file_url)`` for PTB from the one API base setting.

    ``https://api.telegram.org/bot`` -> (same, ``https://api.telegram.org/file/bot``); a self-hosted
    ``http://host:8081`` (with or without the trailing ``/bot``) works the same way.
    """
    base = base_url.strip().rstrip("/")
    if not _BOT_SUFFIX.search(base):
        base += "/bot"
    file_base = _BOT_SUFFIX.sub(lambda m: "/file/bot" + (m.group(1) or ""), base)
    return base, file_base


def is_public_api(base_url: str) -> bool:
    return urlsplit(base_url.strip()).hostname == "api.telegram.org"


def download_limit(base_url: str, max_image_bytes: int) -> int:
    """Largest file we try to download: our own image limit, capped at 20 MB on the public API."""
    return min(max_image_bytes, PUBLIC_DOWNLOAD_LIMIT) if is_public_api(base_url) else max_image_bytes


@dataclass(frozen=True)
class TelegramConfig:
    """What the adapter runs with. Secrets are kept out of ``repr``."""

    token: str = field(repr=False)
    base_url: str = PUBLIC_API_BASE_URL
    base_file_url: str = "https://api.telegram.org/file/bot"
    max_download_bytes: int = PUBLIC_DOWNLOAD_LIMIT
    use_webhook: bool = False
    webhook_url: str | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    webhook_secret: str = field(default="", repr=False)
    status_after_s: float = 2.0  # say "you're #N in the queue" when the answer takes longer than this
    typing_every_s: float = 4.0  # Telegram shows "typing" for ~5 s per sendChatAction
    typing_for_s: float = 120.0  # give up re-sending "typing" after this long
    album_wait_s: float = 10.0  # how long an album reply waits for its earlier siblings' replies
    pending_ttl_s: float = 900.0  # forget an unanswered photo's typing/status bookkeeping after this
    max_retries: int = 3  # AIORateLimiter retries on 429 (it waits retry_after in between)
    poll_timeout_s: int = 10  # getUpdates long-polling timeout (the API wants whole seconds)
    concurrent_updates: int = 32  # a slow download must not hold up other users
    concurrent_downloads: int = 8  # bounds memory: each download may be up to max_download_bytes

    @property
    def webhook_path(self) -> str:
        """The URL path PTB's webhook server listens on: the path of the public webhook URL."""
        return urlsplit(self.webhook_url or "").path.strip("/")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> TelegramConfig:
        if settings.telegram_bot_token is None:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        base, file_base = api_urls(settings.telegram_api_base_url)
        secret = settings.telegram_webhook_secret_token
        config = cls(
            token=settings.telegram_bot_token.get_secret_value(),
            base_url=base,
            base_file_url=file_base,
            max_download_bytes=download_limit(base, settings.max_image_bytes),
            use_webhook=settings.telegram_use_webhook,
            webhook_url=settings.telegram_webhook_url,
            webhook_listen=settings.telegram_webhook_listen,
            webhook_port=settings.telegram_webhook_port,
            # Without a configured secret we still set one: we call setWebhook ourselves, so a
            # random per-run secret makes every webhook call checked.
            webhook_secret=secret.get_secret_value() if secret else secrets.token_urlsafe(32),
        )
        return replace(config, **overrides)
