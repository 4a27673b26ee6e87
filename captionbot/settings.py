"""Runtime settings, read from the environment (prefix ``CAPTIONBOT_``) and an optional ``.env`` file.

Build them once at start-up (``settings = Settings()``) and pass them down; nothing here runs at
import time. The bot tokens are also read under their conventional bare names ``TELEGRAM_BOT_TOKEN``
and ``DISCORD_BOT_TOKEN``; they are ``SecretStr`` so they never show up in logs or reprs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "CAPTIONBOT_"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# Defaults derived from other settings, shown as such in the README table.
_DERIVED_DEFAULTS = {
    "database_url": "sqlite+aiosqlite:///{data_dir}/captionbot.db",
    "image_store_dir": "{data_dir}/images",
    "learn_dir": "{data_dir}/learning",
}


def _token(name: str, description: str) -> Any:
    """A secret token read from ``NAME`` or ``CAPTIONBOT_NAME``."""
    return Field(
        default=None,
        validation_alias=AliasChoices(name.upper(), ENV_PREFIX + name.upper()),
        description=description,
    )


class SettingRow(NamedTuple):
    """One row of the settings reference table."""

    name: str
    env_var: str
    default: str
    description: str


class Settings(BaseSettings):
    """Everything a bot, worker or trainer process can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",  # a shared .env may hold other tools' variables
        validate_by_name=True,  # Settings(telegram_bot_token=...) in code and tests
        validate_default=True,
    )

    # --- storage -------------------------------------------------------------------------------
    data_dir: Path = Field(Path("./data"), description="Directory for the SQLite database and images.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; postgresql://... and sqlite:///... are turned into their async drivers.",
    )
    image_store_dir: Path | None = Field(None, description="Where uploaded photos are kept (content-addressed).")
    retention_days: int = Field(
        30, ge=0, description="Delete stored photos this many days after they were captioned (0 = keep)."
    )

    # --- queue -----------------------------------------------------------------------------------
    broker_url: str = Field(
        "memory://", description="Job broker: memory:// (in-process) or redis://host:6379/0 (Redis Streams)."
    )
    max_attempts: int = Field(3, ge=1, description="Caption attempts per request before it is marked failed.")
    correction_wait_s: float = Field(
        900.0,
        gt=0,
        description="After 'Better caption', how long (seconds) the person's next text counts as the correction.",
    )
    delivery_lease_s: float = Field(
        120.0, gt=0, description="Seconds a bot may take to send one answer before it is given to another try."
    )
    delivery_sweep_s: float = Field(
        15.0, gt=0, description="How often (seconds) the bot looks for answers whose notice was lost."
    )
    queue_max_pending: int = Field(
        1000, ge=1, description="Global bound on queued+running requests; beyond it new photos are refused."
    )
    user_rate_per_minute: float = Field(
        10.0, gt=0, description="Photos a user may send per minute (token bucket refill rate)."
    )
    user_burst: int = Field(5, ge=1, description="Photos a user may send at once (token bucket size).")
    user_max_pending: int = Field(5, ge=1, description="Requests one user may have queued or running.")
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1, description="Largest accepted photo, in bytes.")
    max_pixels: int = Field(
        40_000_000, ge=1, description="Largest accepted photo in pixels (guards against decompression bombs)."
    )

    # --- model / worker --------------------------------------------------------------------------
    model_path: Path | None = Field(None, description="Captioning checkpoint; unset = the shipped default.")
    device: str = Field("auto", description="Torch device: auto, cpu, cuda, cuda:N or mps.")
    batch_size: int = Field(16, ge=1, description="Most photos captioned in one batch.")
    batch_wait_ms: int = Field(50, ge=0, description="How long the worker waits to fill a batch.")
    beam_size: int = Field(3, ge=1, description="Beam width for caption decoding (1 = greedy).")
    torch_threads: int = Field(
        0,
        ge=0,
        description="CPU threads for the model. 0 = auto: all cores for `captionbot worker`; one "
        "core fewer for `captionbot run`, whose bots and database share the process (docs/benchmarks.md).",
    )
    cpu_int8_decoder: bool = Field(
        True, description="On a CPU, decode with int8 weights (~1.5x faster; see docs/benchmarks.md for quality)."
    )
    read_text: bool = Field(
        True,
        description="Read text in photos (signs, screenshots, menus) and add it to the answer; needs the "
        "worker's OCR engine (`pip install 'captionbot[ocr]'`). Off: captions only.",
    )
    read_text_threads: int = Field(1, ge=1, le=64, description="CPU threads the worker uses to read text in a photo.")
    read_text_check_all: bool = Field(
        False,
        description="Let the OCR's detector look at every photo the caption model's text probe rules out: "
        "finds much more small, incidental text (street signs in the background) for about 40-70 ms more "
        "per photo on a CPU (docs/benchmarks.md section 10). Off: the probe decides.",
    )

    # --- learning from feedback ------------------------------------------------------------------
    learn_in_run: bool = Field(
        False, description="Run learning rounds inside `captionbot run` too (`captionbot learner` always does)."
    )
    learn_every_items: int = Field(
        200, ge=0, description="Start a round once this many new usable feedback items arrived (0 = not by count)."
    )
    learn_every_hours: float = Field(
        24.0, ge=0, description="Start a round this often while there is new feedback (0 = not by time)."
    )
    learn_check_s: float = Field(60.0, gt=0, description="How often the learner checks whether a round is due.")
    learn_dir: Path | None = Field(None, description="Candidate checkpoints, round reports and the feature cache.")
    learn_replay_data: str | None = Field(
        None,
        description="Dataset replayed in every round so the model keeps what it knew (Flickr8k folder, .json or "
        ".jsonl); unset = feedback accepted in earlier rounds.",
    )
    learn_replay_photos: int = Field(1000, ge=0, description="Photos of the replay data mixed into each round.")
    learn_fixed_set: str | None = Field(
        None,
        description="Dataset whose dev split every candidate is scored on; unset = a frozen sample of feedback "
        "photos that is never trained on.",
    )
    learn_cider_tolerance: float = Field(
        0.005, ge=0, description="CIDEr-D a candidate may lose on the fixed set and still be promoted."
    )
    learn_holdout_fraction: float = Field(
        0.1, ge=0.01, le=0.5, description="Share of feedback photos held out of training to judge candidates."
    )
    learn_min_people_per_word: int = Field(
        3, ge=1, description="A new word joins the vocabulary once this many people used it in corrections."
    )
    learn_max_per_person: int = Field(50, ge=1, description="Most corrections one person contributes to a round.")
    learn_max_same_text: int = Field(
        3, ge=1, description="Identical corrections on different photos beyond this many are a flood, used once."
    )
    learn_max_words: int = Field(30, ge=3, description="Longest correction used for training, in words.")
    learn_blocklist: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Words that keep a correction out of training (comma-separated)."
    )
    learn_require_review: bool = Field(
        False, description="Use a correction only after a moderator approved it (`captionbot feedback review`)."
    )
    learn_good_weight: float = Field(
        0.5, ge=0, description="Training weight of a caption people rated good (a correction weighs 1)."
    )
    learn_bad_weight: float = Field(
        0.5, ge=0, description="Weight of the unlikelihood term that pushes away from captions rated bad."
    )
    learn_epochs: int = Field(3, ge=1, description="Passes over a round's training set.")
    learn_feedback_repeats: int = Field(
        4, ge=1, description="Times each new feedback example is shown per pass (replay data once)."
    )
    learn_lr: float = Field(3e-4, gt=0, description="Learning rate of a round's fine-tuning.")
    learn_lease_s: float = Field(
        900.0, gt=0, description="A round silent for this long (seconds) is taken as dead and its lease freed."
    )

    # --- operations ------------------------------------------------------------------------------
    metrics_port: int = Field(9108, ge=0, le=65535, description="Port for /metrics and /healthz (0 = off).")
    log_level: LogLevel = Field("INFO", description="Logging level.")

    # --- the web page ----------------------------------------------------------------------------
    web_port: int = Field(
        8080, ge=0, le=65535, description="Port of the web page in `captionbot run` and `captionbot web` (0 = off)."
    )
    web_host: str = Field("127.0.0.1", description="Address the web page listens on (0.0.0.0 to serve other machines).")
    web_moderator_password: SecretStr | None = Field(
        None, description="Password of the moderator's page at /moderate (unset: the page is off)."
    )
    web_secret_key: SecretStr | None = Field(
        None,
        description="Key that signs the web page's cookies (unset: one is made and kept in data_dir/web-secret.key).",
    )
    web_behind_https: bool = Field(
        False, description="The web page is served over HTTPS (by a reverse proxy): its cookies are marked Secure."
    )
    web_uploads_per_minute: int = Field(
        20, ge=1, description="Photos one network address may send per minute through the web page, all visitors."
    )

    # --- Telegram --------------------------------------------------------------------------------
    telegram_bot_token: SecretStr | None = _token("telegram_bot_token", "Telegram bot token from @BotFather.")
    telegram_api_base_url: str = Field(
        "https://api.telegram.org/bot", description="Bot API base URL (for a self-hosted Bot API server)."
    )
    telegram_use_webhook: bool = Field(False, description="Receive updates by webhook instead of polling.")
    telegram_webhook_url: str | None = Field(None, description="Public HTTPS URL Telegram posts updates to.")
    telegram_webhook_listen: str = Field("0.0.0.0", description="Address the webhook server binds to.")
    telegram_webhook_port: int = Field(8443, ge=1, le=65535, description="Port the webhook server binds to.")
    telegram_webhook_secret_token: SecretStr | None = Field(
        None, description="Secret Telegram echoes in X-Telegram-Bot-Api-Secret-Token on every webhook call."
    )

    # --- Discord ---------------------------------------------------------------------------------
    discord_bot_token: SecretStr | None = _token("discord_bot_token", "Discord bot token.")
    discord_guild_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Guilds to sync slash commands to at once (comma-separated); empty = global.",
    )

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        value = value.strip().lower()
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
            raise ValueError("device must be auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("learn_blocklist", mode="before")
    @classmethod
    def _split_words(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [w.strip().lower() for w in value.split(",") if w.strip()]
        return value

    @field_validator("discord_guild_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        # "123,456" (or a JSON list) from the environment.
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return [int(v) for v in re.findall(r"\d+", value)]
            return [int(v) for v in value.replace(" ", ",").split(",") if v]
        return value

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        from captionbot.storage.db import to_async_url  # lazy: keep settings import-light

        if self.database_url is None:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir}/captionbot.db"
        else:
            self.database_url = to_async_url(self.database_url)
        if self.image_store_dir is None:
            self.image_store_dir = self.data_dir / "images"
        if self.learn_dir is None:
            self.learn_dir = self.data_dir / "learning"
        if self.telegram_use_webhook and not self.telegram_webhook_url:
            raise ValueError("telegram_use_webhook needs telegram_webhook_url")
        return self

    # Typed views of the two derived fields (set by _derive_defaults, so never None after start).
    @property
    def db_url(self) -> str:
        assert self.database_url is not None
        return self.database_url

    @property
    def photos_dir(self) -> Path:
        assert self.image_store_dir is not None
        return self.image_store_dir

    @property
    def learning_dir(self) -> Path:
        assert self.learn_dir is not None
        return self.learn_dir

    def __repr_args__(self) -> Any:
        # URLs may embed passwords: show them redacted.
        for name, value in super().__repr_args__():
            if name in ("database_url", "broker_url") and isinstance(value, str):
                value = redact_url(value)
            yield name, value

    @classmethod
    def describe(cls) -> list[SettingRow]:
        """(name, env var, default, description) rows, e.g. for the README's settings table."""
        return [
            SettingRow(name, _env_var(name, info), _default_text(name, info), info.description or "")
            for name, info in cls.model_fields.items()
        ]


def _env_var(name: str, info: FieldInfo) -> str:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return " or ".join(str(choice) for choice in alias.choices)
    return ENV_PREFIX + name.upper()


def _default_text(name: str, info: FieldInfo) -> str:
    if name in _DERIVED_DEFAULTS:
        return _DERIVED_DEFAULTS[name]
    default = info.get_default(call_default_factory=True)
    if default is None:
        return "(unset)"
    if isinstance(default, list):
        return ",".join(map(str, default)) or "(empty)"
    return str(default)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    return re.sub(r"(?<=://)([^:/@]*):[^@/]*@", r"\1:***@", url)


def settings_table_markdown() -> str:
    """The settings reference as a Markdown table."""
    lines = ["| Setting | Environment variable | Default | Description |", "|---|---|---|---|"]
    for row in Settings.describe():
        env = " or ".join(f"`{v}`" for v in row.env_var.split(" or "))
        lines.append(f"| {row.name} | {env} | `{row.default}` | {row.description} |")
    return "\n".join(lines)


__all__ = ["ENV_PREFIX", "SettingRow", "Settings", "redact_url", "settings_table_markdown"]
