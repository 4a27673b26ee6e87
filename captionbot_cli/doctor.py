"""``captionbot doctor``: check a deployment and print what is fine and what is not.

Each check gives one row (name, OK / WARN / FAIL, a short detail). Every check runs on a daemon
thread with a time limit, so a hanging server can't stall the command, and an exception in one check
becomes a FAIL row naming its type. Details never hold secrets: URLs go through ``redact_url`` and
any token or password that still shows up is replaced by ``***``. Exit status 1 when a row FAILs.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import importlib.util
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import typer

if TYPE_CHECKING:
    from captionbot.settings import Settings

Status = Literal["OK", "WARN", "FAIL"]
NET_TIMEOUT_S = 4.0  # one connection attempt
CHECK_TIMEOUT_S = 8.0  # a whole check
MODEL_TIMEOUT_S = 45.0  # importing torch and loading the checkpoint on a small CPU
_COLORS = {"OK": "green", "WARN": "yellow", "FAIL": "red"}


@dataclass(frozen=True)
class Row:
    name: str
    status: Status
    detail: str


@dataclass
class _Found:
    """What one check learns that a later one uses."""

    db_reachable: bool = False
    promoted: tuple[str, str | None] | None = None  # (name, sha256) of the promoted model version


def _bounded(name: str, check: Callable[[], Row], timeout_s: float = CHECK_TIMEOUT_S) -> Row:
    """``check()`` on a daemon thread: a FAIL row when it raises or runs past ``timeout_s``."""
    result: list[Row] = []

    def target() -> None:
        try:
            result.append(check())
        except Exception as exc:  # noqa: BLE001 - one broken check must not stop the others
            result.append(Row(name, "FAIL", f"the check crashed ({type(exc).__name__})"))

    thread = threading.Thread(target=target, name=f"doctor-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return result[0] if result else Row(name, "FAIL", f"no answer within {timeout_s:g} s")


def _check_database(settings: Settings, found: _Found) -> Row:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from captionbot.settings import redact_url

    url = settings.db_url
    shown = redact_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path not in ("", ":memory:") and not Path(path).is_file():
            return Row("database", "WARN", f"no database at {path} yet: run `captionbot db upgrade`")
    try:
        current, head = asyncio.run(asyncio.wait_for(_read_database(url, found), CHECK_TIMEOUT_S - 1))
    except ModuleNotFoundError as exc:
        return Row("database", "FAIL", _missing(exc))
    except (OSError, TimeoutError) as exc:
        return Row("database", "FAIL", f"can't reach {shown} ({type(exc).__name__})")
    except SQLAlchemyError as exc:  # e.g. a wrong password or database name
        cause = getattr(exc, "orig", None) or exc
        return Row("database", "FAIL", f"{shown} refused us ({type(cause).__name__})")
    found.db_reachable = True
    if current == head:
        return Row("database", "OK", f"{shown}, schema at {head} (the latest)")
    at = current or "none (empty database)"
    return Row("database", "WARN", f"schema at {at}, code needs {head}: run `captionbot db upgrade`")


async def _read_database(url: str, found: _Found) -> tuple[str | None, str]:
    from captionbot.storage.db import create_engine, current_revision, head_revision, make_session_factory
    from captionbot.storage.model_versions import current_model_version

    args = {"timeout": NET_TIMEOUT_S} if url.startswith("postgresql+asyncpg") else {}
    engine = create_engine(url, connect_args=args)
    try:
        current, head = await current_revision(engine), head_revision()
        if current == head:
            async with make_session_factory(engine)() as session:
                version = await current_model_version(session)
            if version is not None:
                found.promoted = (version.name, version.sha256)
    finally:
        await engine.dispose()
    return current, head


def _check_broker(settings: Settings) -> Row:
    from captionbot.broker.options import parse_broker_url
    from captionbot.settings import redact_url

    try:
        options = parse_broker_url(settings.broker_url)
    except ValueError as exc:
        return Row("broker", "FAIL", str(exc))
    if not options.durable:
        return Row("broker", "OK", "in-process queue (one process only)")
    shown = redact_url(options.url)
    try:
        from redis.exceptions import RedisError
    except ModuleNotFoundError as exc:
        return Row("broker", "FAIL", _missing(exc))
    try:
        asyncio.run(asyncio.wait_for(_ping_redis(options.url), CHECK_TIMEOUT_S - 1))
    except (RedisError, OSError, TimeoutError) as exc:
        return Row("broker", "FAIL", f"can't reach {shown} ({type(exc).__name__})")
    return Row("broker", "OK", f"{shown} answers PING")


async def _ping_redis(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=NET_TIMEOUT_S, socket_timeout=NET_TIMEOUT_S)
    try:
        await client.ping()
    finally:
        await client.aclose()


def _check_model(settings: Settings, database: threading.Thread, found: _Found) -> Row:
    try:
        import torch  # noqa: F401
    except ImportError:
        return Row("model", "WARN", "model extra not installed (pip install 'captionbot[model]')")
    from captioner.checkpoint import DEFAULT_CHECKPOINT, file_sha256, load_checkpoint

    path = Path(settings.model_path or DEFAULT_CHECKPOINT)
    if not path.is_file():
        return Row("model", "FAIL", f"no checkpoint at {path}")
    load_checkpoint(path, map_location="cpu")
    sha = file_sha256(path)
    database.join(CHECK_TIMEOUT_S)  # the promoted version comes from the database check
    detail = f"{path.name} loads, sha256 {sha[:12]}"
    if found.promoted is None:
        return Row("model", "OK", detail if found.db_reachable else f"{detail} (database not checked)")
    name, promoted_sha = found.promoted
    if promoted_sha and promoted_sha != sha:
        return Row("model", "WARN", f"{detail}, but the promoted version {name} has sha256 {promoted_sha[:12]}")
    return Row("model", "OK", f"{detail}, the promoted version {name}")


def _check_device(settings: Settings) -> Row:
    try:
        import torch  # noqa: F401
    except ImportError:
        return Row("device", "WARN", "model extra not installed: no worker runs here")
    from captioner.inference import DeviceUnavailableError, pick_device

    try:
        return Row("device", "OK", f"{pick_device(settings.device)} (CAPTIONBOT_DEVICE={settings.device})")
    except DeviceUnavailableError as exc:
        return Row("device", "FAIL", str(exc))


def _check_read_text(settings: Settings) -> Row:
    if not settings.read_text:
        return Row("reading text", "OK", "off (CAPTIONBOT_READ_TEXT=false)")
    if importlib.util.find_spec("torch") is None:
        return Row("reading text", "OK", "not needed: no worker runs here (no model extra)")
    try:
        importlib.import_module("rapidocr_onnxruntime")
    except ImportError:
        return Row("reading text", "WARN", "OCR engine missing: pip install 'captionbot[ocr]'")
    return Row("reading text", "OK", "OCR engine installed")


def _check_front_ends(settings: Settings) -> Row:
    from captionbot_cli.runtime import FRONT_END_SETTINGS, enabled_adapters

    served = enabled_adapters(settings)
    if not served:
        return Row("front ends", "FAIL", f"nothing to serve: {FRONT_END_SETTINGS}")
    return Row("front ends", "OK", ", ".join(served))


def _check_telegram(settings: Settings) -> Row:
    assert settings.telegram_bot_token is not None
    try:
        from telegram import Bot
        from telegram.error import InvalidToken, NetworkError
        from telegram.request import HTTPXRequest
    except ModuleNotFoundError as exc:
        return Row("telegram", "FAIL", _missing(exc))
    host = urlsplit(settings.telegram_api_base_url).hostname or "the Bot API server"
    token = settings.telegram_bot_token.get_secret_value()

    async def get_me() -> str:
        request = HTTPXRequest(connect_timeout=NET_TIMEOUT_S, read_timeout=NET_TIMEOUT_S)
        bot = Bot(token, base_url=settings.telegram_api_base_url, request=request)
        async with bot:
            me = await bot.get_me()
        return f"token accepted: @{me.username}"

    try:
        return Row("telegram", "OK", asyncio.run(asyncio.wait_for(get_me(), CHECK_TIMEOUT_S - 1)))
    except InvalidToken:
        return Row("telegram", "FAIL", "Telegram refused the token")
    except (NetworkError, OSError, TimeoutError):
        return Row("telegram", "WARN", f"can't reach {host}: token not checked")


def _check_discord(settings: Settings) -> Row:
    assert settings.discord_bot_token is not None
    try:
        import discord
    except ModuleNotFoundError as exc:
        return Row("discord", "FAIL", _missing(exc))
    token = settings.discord_bot_token.get_secret_value()

    async def login() -> None:
        client = discord.Client(intents=discord.Intents.none())
        try:
            await client.login(token)
        finally:
            await client.close()

    try:
        asyncio.run(asyncio.wait_for(login(), CHECK_TIMEOUT_S - 1))
    except discord.LoginFailure:
        return Row("discord", "FAIL", "Discord refused the token")
    except (OSError, TimeoutError, discord.HTTPException):
        return Row("discord", "WARN", "can't reach discord.com: token not checked")
    return Row("discord", "OK", "token accepted")


def _check_web(settings: Settings) -> Row:
    if settings.web_port == 0:
        return Row("web page", "OK", "off (CAPTIONBOT_WEB_PORT=0)")
    where = f"{settings.web_host}:{settings.web_port}"
    family = socket.AF_INET6 if ":" in settings.web_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server binds
        try:
            sock.bind((settings.web_host, settings.web_port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return Row("web page", "WARN", f"{where} is in use (a running captionbot?)")
            return Row("web page", "FAIL", f"can't listen on {where} ({exc.strerror or type(exc).__name__})")
    return Row("web page", "OK", f"{where} is free")


def _missing(exc: ModuleNotFoundError) -> str:
    from captionbot_cli.errors import EXTRAS

    top = (exc.name or "?").split(".")[0]
    extra = EXTRAS.get(top)
    return f"{top} is not installed" + (f": pip install 'captionbot[{extra}]'" if extra else "")


def run_checks() -> list[Row]:
    """Every check, in order; the rest is skipped when the settings don't load."""
    from pydantic import ValidationError

    from captionbot.settings import Settings
    from captionbot_cli.errors import describe

    try:
        settings = Settings()
    except ValidationError as exc:
        first = (describe(exc) or [str(exc)])[0].removeprefix("error: ")
        return [Row("settings", "FAIL", first)]
    found = _Found()
    rows: dict[str, Row] = {}

    def database() -> None:
        rows["database"] = _bounded("database", lambda: _check_database(settings, found))

    db_thread = threading.Thread(target=database, daemon=True)
    db_thread.start()  # meanwhile the model loads: the two slow checks overlap
    model = _bounded("model", lambda: _check_model(settings, db_thread, found), MODEL_TIMEOUT_S)
    db_thread.join(CHECK_TIMEOUT_S + 1)
    out = [
        Row("settings", "OK", "loaded"),
        rows.get("database", Row("database", "FAIL", "no answer in time")),
        _bounded("broker", lambda: _check_broker(settings)),
        model,
        _bounded("device", lambda: _check_device(settings)),
        _bounded("reading text", lambda: _check_read_text(settings)),
        _bounded("front ends", lambda: _check_front_ends(settings)),
    ]
    if settings.telegram_bot_token is not None:
        out.append(_bounded("telegram", lambda: _check_telegram(settings)))
    if settings.discord_bot_token is not None:
        out.append(_bounded("discord", lambda: _check_discord(settings)))
    out.append(_bounded("web page", lambda: _check_web(settings)))
    return _scrub(out, settings)


def _scrub(rows: list[Row], settings: Settings) -> list[Row]:
    """Any token or password that slipped into a detail becomes ``***``."""
    held: list[Any] = [settings.telegram_bot_token, settings.discord_bot_token, settings.web_moderator_password]
    held += [settings.web_secret_key, settings.telegram_webhook_secret_token]
    secrets = [s.get_secret_value() for s in held if s is not None and s.get_secret_value()]
    for secret in secrets:
        rows = [Row(row.name, row.status, row.detail.replace(secret, "***")) for row in rows]
    return rows


def doctor() -> None:
    """Check this deployment: settings, database, broker, model, device, front ends, web port."""
    rows = run_checks()
    width = max(len(row.name) for row in rows)
    for row in rows:
        status = typer.style(f"{row.status:<4}", fg=_COLORS[row.status], bold=row.status != "OK")
        typer.echo(f"{row.name:<{width}}  {status}  {row.detail}")
    failed = sum(row.status == "FAIL" for row in rows)
    warned = sum(row.status == "WARN" for row in rows)
    typer.echo(f"\n{len(rows) - failed - warned} ok, {warned} to look at, {failed} failed")
    raise typer.Exit(1 if failed else 0)
