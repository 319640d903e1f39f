"""pool bound function: an import's snapshot bound read under the user's lock, held for that
statement only

`highseas_pool_bound(space, key)` takes the user's advisory lock exclusively (waiting for
that user's pool writes in flight, which hold it shared), reads the newest customer id with
a snapshot taken after the wait, and releases the lock before it returns, also on error.
Until this revision the acceptance held the lock until its commit, and acceptances of one
user queued behind each other's commits (customers/snapshot_lock.py). PostgreSQL only.

Revision ID: 3f1c9a7d2b6e
Revises: a6c551d68bba
Create Date: 2026-11-29 18:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3f1c9a7d2b6e"
down_revision: str | None = "a6c551d68bba"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# VOLATILE (the default): each statement inside takes a new snapshot, so the max(id) sees
# every write that committed while pg_advisory_lock waited. A session-level lock is released
# by hand, in the handler too; QUERY_CANCELED is named because OTHERS does not catch it.
POOL_BOUND = """
CREATE OR REPLACE FUNCTION highseas_pool_bound(space integer, key integer) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    bound bigint;
BEGIN
    PERFORM pg_advisory_lock(space, key);
    SELECT coalesce(max(id), 0) INTO bound FROM customers;
    PERFORM pg_advisory_unlock(space, key);
    RETURN bound;
EXCEPTION WHEN OTHERS OR QUERY_CANCELED THEN
    PERFORM pg_advisory_unlock(space, key);
    RAISE;
END
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(POOL_BOUND)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION highseas_pool_bound(integer, integer)")
