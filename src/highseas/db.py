"""Engine and session scope. The request or the job owns the transaction; services never commit.

``sqlite:///…`` and ``postgresql://…`` URLs from the settings are mapped to their async drivers:
SQLAlchemy's aiosqlite dialect over ``highseas.sqlite_driver``'s connection (statements run on
the event loop, ADR 0009), and psycopg 3. On SQLite every transaction starts with
``BEGIN IMMEDIATE``: SQLite has one writer at a time, and taking the write lock up front turns a
read-then-write race between processes into a wait for the lock instead of a
``database is locked`` failure mid-way.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from highseas import sqlite_driver

PING_AFTER_IDLE_SECONDS = 1.0


def to_async_url(url: str) -> URL:
    """Map a settings URL onto the async driver highseas uses for that database."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(
        f"unsupported database URL scheme {parsed.drivername!r}: use sqlite or postgresql"
    )


def shown_url(url: str) -> str:
    """A settings URL fit for logs and messages: its passwords, in the authority or as query
    parameters (libpq reads ``password`` and ``sslpassword`` there), shown as ***."""
    parsed = make_url(url)
    hidden = {key: "***" for key in parsed.query if "password" in key.lower()}
    shown = parsed.update_query_dict(hidden).render_as_string(hide_password=True)
    return shown.replace("%2A%2A%2A", "***")  # as the authority's password is shown


def create_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    """``pool_size``: PostgreSQL connections kept open (10 more may be opened under load)."""
    async_url = to_async_url(url)
    # Statement parameters are phone numbers (decrypted ones too, docs/encryption.md): keep
    # them out of error messages, which reach logs and a failed job's last_error.
    if async_url.get_backend_name() == "sqlite":
        # One connection per process: every transaction takes the write lock at BEGIN anyway,
        # and a second connection in the same process waiting for it would poll in SQLite's
        # busy handler (sleeps of up to 100 ms) instead of queueing for the pool in order.
        path = async_url.database or ":memory:"

        async def connect() -> sqlite_driver.Connection:
            return await sqlite_driver.connect(path)

        engine = create_async_engine(
            async_url,
            async_creator=connect,
            hide_parameters=True,
            pool_size=1,
            max_overflow=0,
            pool_timeout=sqlite_driver.BUSY_TIMEOUT_MS / 1000,
        )
        _begin_immediately(engine)
        return engine
    engine = create_async_engine(async_url, hide_parameters=True, pool_size=pool_size)
    _ping_after_idle(engine)
    return engine


def _ping_after_idle(engine: AsyncEngine) -> None:
    """Check a pooled PostgreSQL connection before use when it sat idle for
    ``PING_AFTER_IDLE_SECONDS``, and replace it when the check fails: after a database restart
    the first request finds a working connection. SQLAlchemy's ``pool_pre_ping`` checks on
    every checkout, a round trip per request or job step under load, where a connection is back
    in use within milliseconds. A restart under load is noticed by the first statement on a
    pooled connection instead: that request fails with 503 and the pool is replaced
    (docs/deploy.md)."""
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def _idle_from(_dbapi_connection: object, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _ping(
        dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, _proxy: object
    ) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool invalidates this connection and checks out a new one.
            raise DisconnectionError("pooled connection failed its check") from exc


def _begin_immediately(engine: AsyncEngine) -> None:
    """The driver's connection is in autocommit mode: the BEGIN is ours (module docstring)."""

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One engine and its session factory; created per app or per worker process."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.engine = create_engine(url, pool_size=pool_size)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed when the block ends, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()
