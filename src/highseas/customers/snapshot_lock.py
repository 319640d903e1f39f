"""Exact pool snapshots on PostgreSQL: a per-user lock between pool writes and imports.

An import into a task takes the pool as it was when the import was accepted: the customers up
to the newest id at that moment (ADR 0006). Ids are handed out when a row is inserted, not when
its transaction commits, so a pool write that inserted lower ids and committed just after the
acceptance would land inside the bound, and the import would take customers created after it
was accepted (contract §2). The soak measured hundreds of them per minute under concurrent
pool imports (soak/README.md).

So a write to a user's pool holds that user's advisory lock, shared, from before its insert
until its commit, and accepting an import of that user's pool reads the bound with the lock
held exclusively: it waits for the writes in flight. The lock is held for that one statement
(the ``highseas_pool_bound`` function, migration 3f1c9a7d2b6e, a column of the query that
checks the accept's task: ``bound_column``), not until the acceptance commits: a write that
starts after it draws its ids from the sequence after the bound was read, so they are above
the bound whenever it commits. (Holding it to the commit made acceptances of one user queue
behind each other's commits; under load the queue fed itself, bench/README.md.) Writes of
other users, and writers among themselves, never wait. SQLite needs none of this: every
transaction holds the database's only write lock from BEGIN.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, Integer, bindparam, func, text
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.customers import repository

# The two-key form keeps these locks apart from one-key ones (the migration lock).
_SPACE = 0x68736E70  # "hsnp"


def _key(user_id: uuid.UUID) -> int:
    # Two users sharing a key only wait for each other now and then.
    return int.from_bytes(user_id.bytes[:4], "big", signed=True)


_HOLD_FOR_WRITING = text(
    "SELECT pg_advisory_xact_lock_shared(CAST(:space AS integer), CAST(:key AS integer))"
)


def _on_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def hold_for_writing(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Before inserting into the user's pool; held until the transaction ends."""
    if _on_postgresql(session):
        await session.execute(_HOLD_FOR_WRITING, {"space": _SPACE, "key": _key(user_id)})


def bound_column(dialect: str) -> ColumnElement[int]:
    """An import's snapshot bound, as a column of the accepting query (with
    ``bound_parameters``): the newest customer id once the user's pool writes in flight have
    committed (module docstring)."""
    if dialect == "postgresql":
        return func.highseas_pool_bound(
            bindparam("bound_space", type_=Integer), bindparam("bound_key", type_=Integer)
        )
    return repository.LAST_ID.scalar_subquery()


def bound_parameters(user_id: uuid.UUID) -> dict[str, int]:
    return {"bound_space": _SPACE, "bound_key": _key(user_id)}
