"""Who is asking: the visitor's id and CSRF token in an encrypted session cookie, and limits per
network address.

A visitor is a user like any other (platform ``web``): their id is a random token kept in the
session cookie, made on their first visit. Every form carries the session's CSRF token; a POST
without the matching token is refused.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
import secrets
from pathlib import Path

from aiohttp import web
from aiohttp_session import Session, get_session

from captionbot.ratelimit import TokenBucket
from captionbot.settings import Settings

log = logging.getLogger(__name__)

VISITOR_KEY = "visitor"
CSRF_KEY = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def cookie_key(settings: Settings) -> bytes:
    """The 32-byte key that encrypts the session cookie: from settings, else kept in a file in
    ``data_dir`` (made once), so visitors keep their photos and answers across restarts."""
    if settings.web_secret_key is not None:
        raw = settings.web_secret_key.get_secret_value().encode()
        return hmac.new(b"captionbot-web-cookie", raw, "sha256").digest()
    path = Path(settings.data_dir) / "web-secret.key"
    try:
        key = base64.urlsafe_b64decode(path.read_bytes().strip())
        if len(key) == 32:
            return key
        log.warning("%s does not hold a 32-byte key; making a new one", path)
    except FileNotFoundError:
        pass
    except ValueError:
        log.warning("%s is not a key; making a new one", path)
    key = os.urandom(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(base64.urlsafe_b64encode(key))
    return key


def csrf_token(session: Session) -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


async def visitor_id(request: web.Request, *, create: bool = True) -> str | None:
    """The visitor's id (made on first use when ``create``)."""
    session = await get_session(request)
    vid = session.get(VISITOR_KEY)
    if not isinstance(vid, str) and create:
        vid = secrets.token_hex(16)
        session[VISITOR_KEY] = vid
    return vid if isinstance(vid, str) else None


async def check_csrf(request: web.Request, form_token: str | None) -> bool:
    """True when ``form_token`` (or the X-CSRF-Token header) matches the session's token."""
    session = await get_session(request)
    expected = session.get(CSRF_KEY)
    given = form_token or request.headers.get(CSRF_HEADER) or ""
    return isinstance(expected, str) and hmac.compare_digest(expected.encode(), given.encode())


def client_address(request: web.Request) -> str:
    """The peer's address (a reverse proxy in front should pass one connection per client)."""
    return request.remote or "unknown"


class AddressLimits:
    """Token buckets per network address: uploads (one visitor can't get around their own limit by
    dropping the cookie) and moderator sign-in attempts."""

    def __init__(self, settings: Settings) -> None:
        rate = settings.web_uploads_per_minute
        self.uploads = TokenBucket(rate_per_minute=rate, burst=max(1, min(rate, 10)))
        self.logins = TokenBucket(rate_per_minute=5, burst=5)
