"""sqlite whole-second times: customers' timestamps all in one text format

Until this revision `pool import` and async_customer batches bound their timestamps to
SQLite without SQLAlchemy's DATETIME processing, so a time on a whole second (a migrated
`created_at` column) was stored as ``YYYY-MM-DD HH:MM:SS``, without the ``.ffffff`` that
every other write has. SQLite compares the text, so a `created_at` range left out its first
second and took in the second after its end (get_customer, customer_to_task, del_customer).
This pads such values to the common format. SQLite only: PostgreSQL stores timestamptz.

Revision ID: 7e2b91c4d5a8
Revises: 3f1c9a7d2b6e
Create Date: 2026-11-30 03:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7e2b91c4d5a8"
down_revision: str | None = "3f1c9a7d2b6e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    for column in ("created_at", "updated_at"):
        op.execute(
            f"UPDATE customers SET {column} = {column} || '.000000' "  # noqa: S608
            f"WHERE length({column}) = 19"
        )


def downgrade() -> None:
    """Nothing to undo: the padded values mean the same times."""
