"""What goes wrong before a command can do its job, said in one or two lines.

A bad setting, a missing optional extra, a server that can't be reached: ``describe(exc)`` gives
the lines to print (what is wrong, what to do), or None for an error this module doesn't know
(then the command says the error's type and message and points to ``--debug``). ``--debug``
prints the full traceback instead.
"""

from __future__ import annotations

import errno
import re
import socket

from pydantic import ValidationError

from captionbot.settings import ENV_PREFIX

#: Top-level module -> the extra that installs it.
EXTRAS = {
    "asyncpg": "postgres",
    "redis": "redis",
    "telegram": "telegram",
    "discord": "discord",
    "torch": "model",
    "torchvision": "model",
    "efficientnet_lite_pytorch": "model",
    "rapidocr_onnxruntime": "ocr",
    "symspellpy": "ocr",
    "sklearn": "train",
    "pycocoevalcap": "train",
}
#: Setting names whose values are never echoed back (they may hold passwords or tokens).
_SECRET_WORDS = ("token", "password", "secret", "url", "key")


def _setting_problem(err: ValidationError) -> list[str]:
    lines = []
    for item in err.errors()[:3]:
        field = str(item["loc"][0]) if item.get("loc") else ""
        env = f"{ENV_PREFIX}{field}".upper() if field else "a setting"
        if field.endswith("_bot_token"):
            env = field.upper()
        shown = "" if any(w in field for w in _SECRET_WORDS) else f" (got {item.get('input')!r})"
        lines.append(f"error: {env}: {item['msg']}{shown}")
    lines.append("Settings come from environment variables or a .env file: see docs/configuration.md.")
    return lines


def _platform_problem(exc: BaseException) -> list[str] | None:
    """Telegram's and Discord's own errors, told apart by their library (not imported here)."""
    module, name = type(exc).__module__, type(exc).__name__
    if module.startswith("telegram"):
        if name == "InvalidToken":
            return ["error: Telegram refused TELEGRAM_BOT_TOKEN: check it with @BotFather (/token)"]
        if name in ("NetworkError", "TimedOut"):
            return [
                f"error: can't reach Telegram's servers ({exc}).",
                "Check this machine's network (or CAPTIONBOT_TELEGRAM_API_BASE_URL);"
                " unset TELEGRAM_BOT_TOKEN to run without it.",
            ]
    if module.startswith("discord"):
        if name == "LoginFailure":
            return ["error: Discord refused DISCORD_BOT_TOKEN: reset it in the Developer Portal (Bot page)"]
        if name in ("GatewayNotFound", "ConnectionClosed", "HTTPException"):
            return [
                f"error: can't reach Discord ({exc}).",
                "Check this machine's network; unset DISCORD_BOT_TOKEN to run without it.",
            ]
    if module.startswith("redis") and name in ("ConnectionError", "TimeoutError", "AuthenticationError"):
        return [
            f"error: can't reach the Redis broker ({exc}).",
            "Check that Redis runs and that CAPTIONBOT_BROKER_URL points to it (memory:// runs without one).",
        ]
    if module.startswith("aiohttp") and "Connector" in name and "discord" in str(exc).lower():
        return [
            f"error: can't reach Discord ({exc}).",
            "Check this machine's network; unset DISCORD_BOT_TOKEN to run without it.",
        ]
    if module.startswith("aiohttp") and "Connector" in name:
        return [f"error: can't connect ({exc}).", "Check this machine's network and the servers in your settings."]
    return None


def describe(exc: BaseException) -> list[str] | None:
    """One or two lines for ``exc``, or None when it is not a known start-up problem."""
    if isinstance(exc, ValidationError):
        return _setting_problem(exc)
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        extra = EXTRAS.get(top)
        if extra is not None:
            return [f"error: this needs the package {top!r}, which is not installed: pip install 'captionbot[{extra}]'"]
        return None
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        port = re.search(r"(\d+)\)?: address already in use", str(exc))
        what = f"port {port[1]}" if port else "a port"
        return [
            f"error: {what} is already in use (another captionbot?): stop what holds it, or choose another port",
            "with CAPTIONBOT_METRICS_PORT or CAPTIONBOT_WEB_PORT (0 turns either off).",
        ]
    platform = _platform_problem(exc)
    if platform is not None:
        return platform
    if isinstance(exc, ConnectionRefusedError | socket.gaierror | TimeoutError | ConnectionError):
        return [
            f"error: a server could not be reached ({exc}).",
            "Check that it runs and that CAPTIONBOT_DATABASE_URL / CAPTIONBOT_BROKER_URL point to it.",
        ]
    return None
