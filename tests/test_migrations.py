"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from pathlib import Path

import psycopg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection, make_url

from highseas.db import Database
from highseas.migrate import alembic_config, upgrade
from highseas.models import Base
from tests.conftest import POSTGRES_ADMIN_URL, postgres_admin


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_models_and_migrations_agree(db: Database) -> None:
    async with db.engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_upgrade_is_idempotent(database_url: str, db: Database) -> None:
    await asyncio.to_thread(upgrade, database_url)
    async with db.engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


def test_simultaneous_upgrades_apply_each_migration_once(tmp_path: Path) -> None:
    """Many processes starting at once (scale-out) must not race on the schema."""
    name = f"highseas_race_{uuid.uuid4().hex[:10]}"
    with postgres_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    env = {**os.environ, "HIGHSEAS_DATABASE_URL": url, "HIGHSEAS_DATA_DIR": str(tmp_path)}
    try:
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "highseas", "db", "upgrade"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [p.communicate(timeout=120)[0] for p in processes]
        assert [p.returncode for p in processes] == [0] * len(processes), outputs
        with psycopg.connect(make_url(url).render_as_string(hide_password=False)) as conn:
            versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        assert len(versions) == 1
    finally:
        with postgres_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_sqlite_whole_second_times_are_padded(tmp_path: Path) -> None:
    """7e2b91c4d5a8: times stored without microseconds get them, so text order is time order."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "3f1c9a7d2b6e")
    with closing(sqlite3.connect(tmp_path / "old.db")) as connection, connection:
        connection.execute(
            "INSERT INTO customers (id, public_id, user_id, phone, operator, components,"
            " created_at, updated_at) VALUES (1, 'p', 'u', '13100000000', 2, '{}',"
            " '2026-05-01 02:00:00', '2026-05-01 02:00:00.250000')"
        )
    upgrade(url)
    with closing(sqlite3.connect(tmp_path / "old.db")) as connection:
        row = connection.execute("SELECT created_at, updated_at FROM customers").fetchone()
    assert row == ("2026-05-01 02:00:00.000000", "2026-05-01 02:00:00.250000")
