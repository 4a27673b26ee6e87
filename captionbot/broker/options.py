"""The broker URL: which transport, and the options of ours that ride in its query string."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["DEFAULT_PREFIX", "DEFAULT_RECLAIM_AFTER_S", "BrokerOptions", "parse_broker_url"]

DEFAULT_PREFIX = "captionbot"
DEFAULT_RECLAIM_AFTER_S = 60.0


@dataclass(frozen=True)
class BrokerOptions:
    """What :func:`parse_broker_url` took out of the URL."""

    scheme: str  # "memory" or "redis"
    url: str  # the URL for redis, without our own query options (may hold a password: don't log)
    prefix: str = DEFAULT_PREFIX
    reclaim_after_s: float = DEFAULT_RECLAIM_AFTER_S

    @property
    def durable(self) -> bool:
        """Do messages outlive this process?"""
        return self.scheme != "memory"


def parse_broker_url(url: str) -> BrokerOptions:
    """Split ``queue_prefix`` and ``reclaim_after`` off a ``memory://`` or ``redis://`` URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    prefix = query.pop("queue_prefix", DEFAULT_PREFIX) or DEFAULT_PREFIX
    reclaim = float(query.pop("reclaim_after", DEFAULT_RECLAIM_AFTER_S))
    if reclaim <= 0:
        raise ValueError("reclaim_after must be > 0 seconds")
    if scheme == "memory":
        return BrokerOptions("memory", url, prefix, reclaim)
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"unsupported broker URL scheme {scheme!r}: use memory:// or redis://host:port/db")
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
    return BrokerOptions("redis", clean, prefix, reclaim)
