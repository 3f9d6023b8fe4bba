"""The one settings object, read from the environment and `.env`, passed down explicitly."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_CATEGORIES = ("cs.AI", "cs.CL", "cs.ET", "cs.LG", "cs.NE", "stat.ML")
ARXIV_QUERY_URL = "https://export.arxiv.org/api/query"
DISCORD_API_URL = "https://discord.com/api/v10"


@dataclass(frozen=True, slots=True)
class ArxivSettings:
    api_url: str
    categories: tuple[str, ...]
    lookback_days: int
    delay_seconds: float
    page_size: int
    timeout_seconds: float
    retries: int


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """The OpenAI-compatible chat model behind summaries and relevance verdicts."""

    api_key: SecretStr | None
    base_url: str | None
    model: str
    timeout_seconds: float
    max_retries: int


@dataclass(frozen=True, slots=True)
class SummarySettings:
    relevance_threshold: float
    concurrency: int
    max_per_poll: int


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    band_low: float
    band_high: float
    max_per_poll: int
    batch_size: int
    concurrency: int


@dataclass(frozen=True, slots=True)
class DiscordSettings:
    token: SecretStr | None
    api_base_url: str
    guild_id: int | None  # register commands in this one server; None: globally


@dataclass(frozen=True, slots=True)
class StorageSettings:
    database_url: str

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def database_path(self) -> Path:
        """The SQLite file (meaningless on PostgreSQL)."""
        return Path(self.database_url.removeprefix("sqlite:///"))

    @property
    def display_name(self) -> str:
        """The database for messages: the file, or the server and database without the
        user name and password."""
        if not self.is_postgres:
            return str(self.database_path)
        # The host follows the last "@": a password may hold "@" itself.
        parts = urlsplit(self.database_url)
        host, database = parts.netloc.rpartition("@")[2], parts.path.lstrip("/")
        return f"PostgreSQL at {host or 'localhost'}/{database}".rstrip("/")


@dataclass(frozen=True, slots=True)
class DigestSettings:
    default_time: str  # HH:MM UTC
    max_papers: int
    relevance_threshold: float
    give_up_hours: float = 24.0  # a channel failing this long is paused
    votes_to_learn: int = 20  # a channel's votes steer its digests from this many on


class Settings(BaseSettings):
    """Every setting, flat as in the environment and `.env`. Modules receive only their
    section (`settings.arxiv`, `.llm`, `.summaries`, `.judge`, `.digests`, `.discord`,
    `.storage`); the service, the pipeline and the command line, which put the stages
    together, get the whole."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = "sqlite:///data/arxiv-bot.db"
    # Names this process among several on one PostgreSQL database (health, the leader).
    process_name: str = Field(default_factory=socket.gethostname, min_length=1, max_length=100)
    arxiv_api_url: str = ARXIV_QUERY_URL
    arxiv_categories: Annotated[tuple[str, ...], NoDecode] = DEFAULT_CATEGORIES
    arxiv_lookback_days: int = Field(3, ge=1, le=3650)
    arxiv_delay_seconds: float = Field(3.0, ge=0)
    arxiv_page_size: int = Field(200, ge=1, le=2000)
    arxiv_timeout_seconds: float = Field(30.0, gt=0)
    arxiv_retries: int = Field(4, ge=0, le=20)
    relevance_threshold: float = Field(0.5, ge=0, le=1)
    vocabulary_path: Path | None = None
    relevance_model_path: Path | None = None
    relevance_judge: Literal["off", "llm"] = "off"
    judge_band_low: float = Field(0.15, ge=0, le=1)
    judge_band_high: float = Field(0.85, ge=0, le=1)
    judge_max_per_poll: int = Field(200, ge=0, le=10000)
    judge_batch_size: int = Field(8, ge=1, le=50)
    log_level: str = "INFO"

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None  # None: OpenAI itself
    openai_model: str = "gpt-4o-mini"
    openai_timeout_seconds: float = Field(60.0, gt=0)
    openai_max_retries: int = Field(3, ge=0, le=10)
    summary_concurrency: int = Field(4, ge=1, le=64)
    summary_max_per_poll: int = Field(100, ge=0, le=10000)

    discord_token: SecretStr | None = None
    discord_api_base_url: str = DISCORD_API_URL
    discord_guild_id: int | None = None
    digest_time: str = "08:00"
    digest_max_papers: int = Field(15, ge=1, le=50)
    poll_interval_minutes: int = Field(60, ge=5, le=24 * 60)
    delivery_give_up_hours: float = Field(24.0, gt=0, le=24 * 30)
    channel_votes_to_learn: int = Field(20, ge=1, le=100_000)

    @field_validator("digest_time")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError("use a UTC time of day as HH:MM, e.g. 08:00")
        return value

    @field_validator("discord_api_base_url")
    @classmethod
    def _discord_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("use an http(s) URL like https://discord.com/api/v10")
        return value.rstrip("/")

    @field_validator("discord_token", "discord_guild_id", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("openai_api_key", "openai_base_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("openai_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("use an http:// or https:// URL, e.g. http://localhost:11434/v1")
        return value

    @field_validator("arxiv_categories", mode="before")
    @classmethod
    def _split_categories(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        if not value:
            raise ValueError("list at least one arXiv category, e.g. cs.LG,stat.ML")
        if not isinstance(value, list | tuple):
            raise ValueError("list arXiv categories separated by commas, e.g. cs.LG,stat.ML")
        for category in value:
            if not isinstance(category, str) or " " in category or ":" in category:
                raise ValueError(f"{category!r} is not an arXiv category like cs.LG")
        return value

    @field_validator("database_url")
    @classmethod
    def _sqlite_or_postgres(cls, value: str) -> str:
        if value.startswith(("postgresql://", "postgres://")):
            if not value.split("://", 1)[1].strip("/"):
                raise ValueError("name the server: postgresql://user:password@host:5432/dbname")
            return value
        if not value.startswith("sqlite:///") or value == "sqlite:///":
            raise ValueError(
                "use sqlite:///relative/path.db, sqlite:////absolute/path.db or"
                " postgresql://user:password@host:5432/dbname"
            )
        return value

    @field_validator("process_name", mode="before")
    @classmethod
    def _empty_means_host_name(cls, value: object) -> object:
        return socket.gethostname() if value == "" or value is None else value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("vocabulary_path", "relevance_model_path", mode="before")
    @classmethod
    def _empty_means_builtin(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("vocabulary_path", "relevance_model_path")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no file at {value}")
        return value

    @field_validator("relevance_judge", mode="before")
    @classmethod
    def _judge_lowercase(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _band_in_order(self) -> Settings:
        if self.judge_band_low >= self.judge_band_high:
            raise ValueError("JUDGE_BAND_LOW must be below JUDGE_BAND_HIGH")
        if self.relevance_judge == "llm" and self.openai_api_key is None:
            raise ValueError("RELEVANCE_JUDGE=llm needs OPENAI_API_KEY (the judge is a model)")
        return self

    @property
    def database_path(self) -> Path:
        return self.storage.database_path

    @property
    def arxiv(self) -> ArxivSettings:
        return ArxivSettings(
            self.arxiv_api_url,
            self.arxiv_categories,
            self.arxiv_lookback_days,
            self.arxiv_delay_seconds,
            self.arxiv_page_size,
            self.arxiv_timeout_seconds,
            self.arxiv_retries,
        )

    @property
    def llm(self) -> ModelSettings:
        return ModelSettings(
            self.openai_api_key,
            self.openai_base_url,
            self.openai_model,
            self.openai_timeout_seconds,
            self.openai_max_retries,
        )

    @property
    def summaries(self) -> SummarySettings:
        return SummarySettings(
            self.relevance_threshold, self.summary_concurrency, self.summary_max_per_poll
        )

    @property
    def judge(self) -> JudgeSettings:
        return JudgeSettings(
            self.judge_band_low,
            self.judge_band_high,
            self.judge_max_per_poll,
            self.judge_batch_size,
            self.summary_concurrency,
        )

    @property
    def discord(self) -> DiscordSettings:
        return DiscordSettings(self.discord_token, self.discord_api_base_url, self.discord_guild_id)

    @property
    def storage(self) -> StorageSettings:
        return StorageSettings(self.database_url)

    @property
    def digests(self) -> DigestSettings:
        return DigestSettings(
            self.digest_time,
            self.digest_max_papers,
            self.relevance_threshold,
            self.delivery_give_up_hours,
            self.channel_votes_to_learn,
        )


class SettingsError(Exception):
    """A setting has an invalid value; the message names it in one line."""


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning pydantic's multi-line report into one line per bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "settings"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if error["loc"] else message)
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
