"""Exact pool snapshots on PostgreSQL: a per-user lock between pool writes and imports.

An import into a task takes the pool as it was when the import was accepted: the customers up
to the newest id at that moment (ADR 0006). Ids are handed out when a row is inserted, not when
its transaction commits, so a pool write that inserted lower ids and committed just after the
acceptance would land inside the bound, and the import would take customers created after it
was accepted (contract §2). The soak measured hundreds of them per minute under concurrent
pool imports (soak/README.md).

So a write to a user's pool holds that user's advisory lock, shared, from before its insert
until its commit, and accepting an import of that user's pool takes the lock exclusively
before reading the bound: it waits for the writes in flight, and new ones wait for the
acceptance to commit. Writes of other users, and writers among themselves, never wait.
SQLite needs none of this: every transaction holds the database's only write lock from BEGIN.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# The two-key form keeps these locks apart from one-key ones (the migration lock).
_SPACE = 0x68736E70  # "hsnp"


def _key(user_id: uuid.UUID) -> int:
    # Two users sharing a key only wait for each other now and then.
    return int.from_bytes(user_id.bytes[:4], "big", signed=True)


async def _lock(session: AsyncSession, function: str, user_id: uuid.UUID) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return
    statement = text(f"SELECT {function}(CAST(:space AS integer), CAST(:key AS integer))")
    await session.execute(statement, {"space": _SPACE, "key": _key(user_id)})


async def hold_for_writing(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Before inserting into the user's pool; held until the transaction ends."""
    await _lock(session, "pg_advisory_xact_lock_shared", user_id)


async def hold_for_snapshot(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Before reading an import's snapshot bound; held until the transaction ends."""
    await _lock(session, "pg_advisory_xact_lock", user_id)
