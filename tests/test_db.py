from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

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
