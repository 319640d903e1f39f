"""Fixtures shared by the whole suite.

Every test that takes ``database_url`` (directly or through ``db``, ``settings``, ``client``)
runs twice: on SQLite and on PostgreSQL. Each backend gets a fresh database built by the real
migrations. PostgreSQL comes from ``HIGHSEAS_TEST_POSTGRES_URL`` (default: the local server);
when it cannot be reached the PostgreSQL half is skipped, except under ``CI=true``, where it
fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from highseas.config import Settings
from highseas.db import Database
from highseas.main import create_app
from highseas.migrate import upgrade
from highseas.models import Base
from tests.fixtures.receiver import Receiver

POSTGRES_ADMIN_URL = os.environ.get(
    "HIGHSEAS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def postgres_admin() -> psycopg.Connection:
    url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql")
    dsn = url.render_as_string(hide_password=False)
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {url.render_as_string()} is not reachable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'highseas.db'}"
        upgrade(url)
        yield url
        return
    name = f"highseas_test_{uuid.uuid4().hex[:12]}"
    with postgres_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with postgres_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def truncate_all(database: Database) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with database.transaction() as session:
        if database.engine.dialect.name == "postgresql":
            await session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await session.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The migrated database of this backend, emptied after the test."""
    database = Database(database_url)
    try:
        yield database
    finally:
        await truncate_all(database)
        await database.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Callback receivers are on 127.0.0.1 (private addresses allowed) and retries are
    immediate, three of them; download links name the test client's host."""
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        callback_allow_private=True,
        callback_retry_schedule=[0, 0, 0],
        callback_timeout=2.0,
        public_url="http://testserver",
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP callback receiver on 127.0.0.1."""
    with Receiver().running() as running:
        yield running


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings, database=db)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The real app in-process over ASGI (tests/test_cli.py covers real sockets)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
