"""idempotency given hash: a retry of an accepted request gets its batch

`idempotency_keys.given_hash` is the hash of the request as given, before it is checked: a
retry with the same key and input returns the earlier batch even when a check would now fail
(a component deleted, the callback URL removed, encryption switched off since). Keys claimed
before this revision have none and keep the old behaviour until they expire (24 h).

Revision ID: 9d4c2e7b1a60
Revises: 5b0e6f3a9c21
Create Date: 2026-11-30 03:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d4c2e7b1a60"
down_revision: str | None = "5b0e6f3a9c21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("given_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("given_hash")
