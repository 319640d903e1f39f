"""Settings: the only place that reads the environment (prefix ``HIGHSEAS_``)."""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.exc import ArgumentError

from highseas.db import to_async_url
from highseas.logs import LogFormat

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Values that look like secrets but are documentation placeholders.
_PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "please-change-me"})
_MIN_SECRET_LENGTH = 32


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HIGHSEAS_", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    database_url: str = "sqlite:///./highseas.db"
    data_dir: Path = Path(".highseas")
    public_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    timezone: str = "Asia/Shanghai"
    log_level: str = "INFO"
    # Production logs go to a collector that parses them; a developer reads them.
    log_format: LogFormat = Field(
        default_factory=lambda given: (
            LogFormat.JSON if given["env"] is Environment.PRODUCTION else LogFormat.TEXT
        )
    )
    metrics_enabled: bool = True
    # `highseas worker` serves its metrics here when a port is set (it has no HTTP server).
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)

    download_ttl: int = Field(default=604_800, gt=0, description="seconds")
    callback_allow_private: bool = False
    callback_timeout: float = Field(default=10.0, gt=0, description="seconds")
    callback_retry_schedule: Annotated[list[int], NoDecode] = [
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        36000,
    ]
    encryption_grace: int = Field(default=86_400, ge=0, description="seconds")
    secret_key: str | None = None

    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)

    job_lease_seconds: float = Field(default=30.0, gt=0)
    job_poll_seconds: float = Field(default=0.5, gt=0)
    job_max_attempts: int = Field(default=10, ge=1)
    job_shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    # customer_to_task commits every this many matching customers: shorter SQLite write locks
    # and finer resumption after a crash, against more statements.
    import_chunk_rows: int = Field(default=50_000, ge=1)

    @field_validator("callback_retry_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            return [int(p) for p in parts]
        return value

    @field_validator("callback_retry_schedule")
    @classmethod
    def _waits(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("needs at least one wait (seconds after a failed attempt)")
        if min(value) < 0:
            raise ValueError("a wait cannot be negative")
        return value

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, value: str) -> str:
        try:
            to_async_url(value)
        except (ArgumentError, ValueError) as exc:
            # What is wrong, not the URL itself: it may hold a password.
            raise ValueError(
                f"{exc}; expected sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
            ) from None
        return value

    @field_validator("public_url")
    @classmethod
    def _http_base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError("expected the service's public base, e.g. https://hs.example.com")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}")
        return level

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _production_needs_secret(self) -> Settings:
        if self.env is Environment.PRODUCTION and not _is_real_secret(self.secret_key):
            raise ValueError(
                "HIGHSEAS_SECRET_KEY must be set to a random value of at least "
                f"{_MIN_SECRET_LENGTH} characters in production"
            )
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def base_url(self) -> str:
        """Public base of links the service hands out (download links)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    def resolved_secret_key(self) -> str:
        """The configured key, or in development one generated once and kept in ``data_dir``."""
        if _is_real_secret(self.secret_key):
            assert self.secret_key is not None
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key)
        return key


def _is_real_secret(value: str | None) -> bool:
    return (
        value is not None
        and value.strip().lower() not in _PLACEHOLDER_SECRETS
        and len(value) >= _MIN_SECRET_LENGTH
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
