"""Content-addressed photo storage on the local file system.

A photo's bytes live at ``root/ab/cd/<sha256>`` where ``abcd`` are the first hex digits of its
SHA-256. Paths are only ever built from a validated hex digest, never from anything a user sent.
The methods are synchronous (fast local I/O); async callers with big files can use the ``a*``
variants, which run them in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class InvalidDigestError(ValueError):
    """Not a lowercase hex SHA-256 digest."""


def sha256_hex(data: bytes) -> str:
    """The lowercase hex SHA-256 of ``data``: the key photos are stored under."""
    return hashlib.sha256(data).hexdigest()


class ImageStore:
    """Photos keyed by their SHA-256; writes are atomic and idempotent."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ImageStore({str(self.root)!r})"

    def path(self, sha256: str) -> Path:
        """Where the photo with digest ``sha256`` lives (whether or not it exists)."""
        if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
            raise InvalidDigestError(f"not a lowercase hex sha256 digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha256. Storing the same bytes twice is a no-op."""
        digest = sha256_hex(data)
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write a temp file in the same directory, then rename: readers never see a partial file,
        # and two writers of the same photo both end with the same complete file.
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def read(self, sha256: str) -> bytes:
        """The stored bytes; ``FileNotFoundError`` if the photo is not (or no longer) stored."""
        return self.path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def delete(self, sha256: str) -> bool:
        """Remove the photo; True if a file was deleted, False if there was none."""
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        """Digests of all stored photos (for retention sweeps and orphan checks)."""
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*"):
            if _SHA256_RE.fullmatch(path.name) and path.is_file():
                yield path.name

    async def aput(self, data: bytes) -> str:
        return await asyncio.to_thread(self.put, data)

    async def aread(self, sha256: str) -> bytes:
        return await asyncio.to_thread(self.read, sha256)


__all__ = ["ImageStore", "InvalidDigestError", "sha256_hex"]
