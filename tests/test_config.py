from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from highseas.config import Environment, Settings


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HIGHSEAS_DATABASE_URL", "HIGHSEAS_ENV", "HIGHSEAS_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.env is Environment.DEVELOPMENT
    assert settings.database_url == "sqlite:///./highseas.db"
    assert settings.timezone == "Asia/Shanghai"
    assert settings.download_ttl == 604_800
    assert settings.encryption_grace == 86_400
    assert settings.base_url == "http://127.0.0.1:8000"


def test_environment_is_read_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIGHSEAS_CALLBACK_RETRY_SCHEDULE", "5, 300,1800")
    monkeypatch.setenv("HIGHSEAS_PUBLIC_URL", "https://hs.example.cn/")
    monkeypatch.setenv("HIGHSEAS_CALLBACK_ALLOW_PRIVATE", "true")
    settings = Settings()
    assert settings.callback_retry_schedule == [5, 300, 1800]
    assert settings.base_url == "https://hs.example.cn"
    assert settings.callback_allow_private is True


@pytest.mark.parametrize("secret", [None, "changeme", "short"])
def test_production_refuses_a_missing_or_placeholder_secret(secret: str | None) -> None:
    with pytest.raises(ValidationError, match="HIGHSEAS_SECRET_KEY"):
        Settings(env=Environment.PRODUCTION, secret_key=secret)


def test_production_accepts_a_real_secret() -> None:
    settings = Settings(env=Environment.PRODUCTION, secret_key="k" * 40)
    assert settings.resolved_secret_key() == "k" * 40


def test_development_generates_and_keeps_a_secret(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = settings.resolved_secret_key()
    assert len(first) >= 32
    assert Settings(data_dir=tmp_path / "data").resolved_secret_key() == first
    mode = (tmp_path / "data" / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="Mars/Olympus"):
        Settings(timezone="Mars/Olympus")
