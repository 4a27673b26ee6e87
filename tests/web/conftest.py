"""Fixtures for the web page: the real pipeline (tiny model, both deployments) with the web front
end, and an aiohttp test client that keeps cookies like a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.tiny_model import make_settings

MODERATOR_PASSWORD = "correct horse battery staple"


@dataclass
class WebRig:
    stack: Any  # captionbot_cli.runtime.Stack
    front_end: Any  # bot.web.app.WebFrontEnd
    client: TestClient  # keeps the session cookie between requests
    settings: Any

    async def new_client(self) -> TestClient:
        """Another browser: its own cookies (closed with the rig)."""
        client = TestClient(TestServer(self.front_end.build_app()))
        await client.start_server()
        self._extra.append(client)
        return client

    def __post_init__(self) -> None:
        self._extra: list[TestClient] = []


async def open_web(tmp_path: Path, backend: Any, **overrides: Any) -> AsyncIterator[WebRig]:
    from bot.web.app import WebFrontEnd
    from captionbot.service import ModerationService
    from captionbot_cli.runtime import Stack

    values: dict[str, Any] = {"web_moderator_password": MODERATOR_PASSWORD, "web_port": 0}
    values.update(overrides)
    settings = make_settings(tmp_path, backend, **values)
    made: dict[str, Any] = {}

    def add_front_end(stack: Any) -> None:
        moderation = ModerationService(settings, stack.session_factory, stack.image_store)
        made["fe"] = WebFrontEnd(settings, stack.service, moderation)

    stack = await Stack.open(settings, "all", adapters=False, before_start=add_front_end)
    client = TestClient(TestServer(made["fe"].build_app()))
    await client.start_server()
    rig = WebRig(stack, made["fe"], client, settings)
    try:
        yield rig
    finally:
        for extra in rig._extra:
            await extra.close()
        await client.close()
        await stack.close(grace=10)


@pytest.fixture
async def web(backend: Any, tmp_path: Path) -> AsyncIterator[WebRig]:
    """The web page over the real pipeline, on both deployments."""
    async for rig in open_web(tmp_path, backend):
        yield rig


@pytest.fixture
async def web_sqlite(tmp_path: Path) -> AsyncIterator[WebRig]:
    """The web page over the embedded default only (for tests of the page itself)."""
    from captionbot.storage.db import upgrade_async
    from tests.tiny_model import Backend

    url = f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"
    await upgrade_async(url)
    async for rig in open_web(tmp_path, Backend(url, "memory://")):
        yield rig
