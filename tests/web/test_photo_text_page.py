"""The answer page shows the text read in the photo, line by line, and puts it in the photo's alt
text; the JSON the script reads carries it too. Real pipeline, tiny model, real OCR engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from markupsafe import escape

pytest.importorskip("rapidocr_onnxruntime", reason="the OCR engine is not installed: pip install -e '.[ocr]'")

from captionbot import texts  # noqa: E402
from tests.test_worker_reads_text import plain_photo, sign_photo  # noqa: E402
from tests.tiny_model import Backend  # noqa: E402
from tests.web.conftest import WebRig, open_web  # noqa: E402
from tests.web.test_public_page import finished, sent  # noqa: E402

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def reading_web(tmp_path: Path) -> AsyncIterator[WebRig]:
    from captionbot.storage.db import upgrade_async

    url = f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"
    await upgrade_async(url)
    async for rig in open_web(tmp_path, Backend(url, "memory://"), read_text=True):
        yield rig


async def test_the_answer_page_shows_the_text_and_the_alt_text_says_it(reading_web: WebRig) -> None:
    client = reading_web.client
    with_text = await sent(client, sign_photo())
    without = await sent(client, plain_photo())
    view = await finished(client, with_text)
    assert view["photo_text"] == "FRESH COFFEE\nOPEN DAILY"
    body = await (await client.get(f"/r/{with_text}")).text()
    assert f'<h2 id="photo-text-heading">{texts.TEXT_LABEL}</h2>' in body
    assert "FRESH COFFEE<br>OPEN DAILY</blockquote>" in body
    alt = escape(f'{view["answer"]} Text in the photo: "FRESH COFFEE OPEN DAILY"')
    assert f'alt="{alt}"' in body

    plain = await finished(client, without)
    assert plain["photo_text"] is None
    body = await (await client.get(f"/r/{without}")).text()
    assert "photo-text-heading" not in body and f'alt="{escape(plain["answer"])}"' in body
