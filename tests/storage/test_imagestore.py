"""captionbot.storage.imagestore: photo files, content-addressed by their SHA-256."""

from __future__ import annotations

import pytest

from captionbot.storage.imagestore import ImageStore, InvalidDigestError, sha256_hex


def test_image_store_is_content_addressed_and_atomic(image_store: ImageStore) -> None:
    data = b"\xff\xd8 not really a jpeg"
    digest = image_store.put(data)
    assert digest == sha256_hex(data)
    path = image_store.path(digest)
    assert path == image_store.root / digest[:2] / digest[2:4] / digest
    assert image_store.put(data) == digest  # idempotent
    assert image_store.read(digest) == data and image_store.exists(digest)
    assert list(image_store) == [digest]
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]
    assert image_store.delete(digest) is True and image_store.delete(digest) is False
    assert not image_store.exists(digest)
    with pytest.raises(FileNotFoundError):
        image_store.read(digest)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "a" * 63, "a" * 64 + "/x", "", "g" * 64])
def test_image_store_rejects_anything_but_a_digest(image_store: ImageStore, bad: str) -> None:
    with pytest.raises(InvalidDigestError):
        image_store.path(bad)


async def test_image_store_async_helpers(image_store: ImageStore) -> None:
    digest = await image_store.aput(b"abc")
    assert await image_store.aread(digest) == b"abc"
