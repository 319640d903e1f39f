from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

import highseas.db
from highseas.config import Settings
from highseas.db import Database, to_async_url


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///./highseas.db", "sqlite+aiosqlite"),
        ("sqlite:////var/lib/highseas/db.sqlite", "sqlite+aiosqlite"),
        ("postgresql://u:p@db:5432/hs", "postgresql+psycopg"),
        ("postgres://u@db/hs", "postgresql+psycopg"),
        ("postgresql+psycopg://u@db/hs", "postgresql+psycopg"),
    ],
)
def test_urls_map_to_async_drivers(url: str, driver: str) -> None:
    mapped = to_async_url(url)
    assert mapped.drivername == driver
    assert mapped.database == make_url(url).database


def test_unsupported_scheme_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="mysql"):
        to_async_url("mysql://u@db/hs")


async def test_errors_do_not_carry_statement_parameters(db: Database) -> None:
    with pytest.raises(DBAPIError) as raised:
        async with db.transaction() as session:
            await session.execute(
                text("SELECT * FROM no_such_table WHERE phone = :phone"), {"phone": "13900000001"}
            )
    assert "no_such_table" in str(raised.value)
    assert "13900000001" not in str(raised.value)


def _on_postgresql(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server connection to lose")


async def test_a_pooled_connection_that_died_while_idle_is_replaced_before_use(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _on_postgresql(db)
    monkeypatch.setattr(highseas.db, "PING_AFTER_IDLE_SECONDS", 0.2)
    async with db.transaction() as session:
        first = await session.scalar(text("SELECT pg_backend_pid()"))
    other = Database(settings.database_url)
    try:
        async with other.transaction() as session:
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    finally:
        await other.dispose()
    await asyncio.sleep(0.3)
    async with db.transaction() as session:
        assert await session.scalar(text("SELECT pg_backend_pid()")) != first


async def test_a_connection_back_in_use_at_once_is_not_pinged(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _on_postgresql(db)
    dialect = db.engine.sync_engine.dialect
    pings: list[object] = []
    real_ping = dialect.do_ping

    def counted(dbapi_connection: object) -> object:
        pings.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    for _ in range(3):
        async with db.transaction() as session:
            await session.execute(text("SELECT 1"))
    assert pings == []
    monkeypatch.setattr(highseas.db, "PING_AFTER_IDLE_SECONDS", 0.0)
    async with db.transaction() as session:
        await session.execute(text("SELECT 1"))
    assert len(pings) == 1
