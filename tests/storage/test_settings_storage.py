"""Storage settings: the database URL and image directory derived from the data dir, and secret tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from captionbot.settings import Settings


def test_settings_derive_storage_paths_and_read_tokens(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("CAPTIONBOT_DATABASE_URL", "CAPTIONBOT_IMAGE_STORE_DIR", "CAPTIONBOT_TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAPTIONBOT_DATA_DIR", "/srv/cb")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:tg-hunter2")
    monkeypatch.setenv("CAPTIONBOT_DISCORD_BOT_TOKEN", "dc-hunter2")
    monkeypatch.setenv("CAPTIONBOT_DISCORD_GUILD_IDS", "1, 2")
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:////srv/cb/captionbot.db"
    assert str(settings.image_store_dir) == "/srv/cb/images"
    assert settings.telegram_bot_token is not None
    assert settings.telegram_bot_token.get_secret_value() == "123:tg-hunter2"
    assert settings.discord_bot_token.get_secret_value() == "dc-hunter2"  # type: ignore[union-attr]
    assert settings.discord_guild_ids == [1, 2]
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)

    monkeypatch.setenv("CAPTIONBOT_DATABASE_URL", "postgresql://bot:pw@db/captionbot")
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://bot:pw@db/captionbot"
    assert "pw" not in repr(settings)

    rows = {row.name: row for row in Settings.describe()}
    assert rows["telegram_bot_token"].env_var == "TELEGRAM_BOT_TOKEN or CAPTIONBOT_TELEGRAM_BOT_TOKEN"
    assert rows["database_url"].default == "sqlite+aiosqlite:///{data_dir}/captionbot.db"
    assert rows["batch_size"].env_var == "CAPTIONBOT_BATCH_SIZE" and rows["batch_size"].default == "16"
    assert all(row.description for row in rows.values())
