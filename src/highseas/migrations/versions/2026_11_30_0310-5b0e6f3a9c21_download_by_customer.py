"""download by customer: the batch index carries the customer id

The download lists a batch's numbers ascending by pool customer, as contract §3 says (since
a6c551d68bba it listed them by phone). Each page of it is read from this index alone, which
stays keyed by phone for the import's writes (docs/adr/0008-import-chunks-by-phone.md).
On PostgreSQL the index is rebuilt under a lock that holds up writes to task_numbers (imports)
for as long as that takes on a large table: upgrade outside busy hours (docs/deploy.md §5).

Revision ID: 5b0e6f3a9c21
Revises: 7e2b91c4d5a8
Create Date: 2026-11-30 03:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5b0e6f3a9c21"
down_revision: str | None = "7e2b91c4d5a8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task_numbers", schema=None) as batch_op:
        batch_op.drop_index("ix_task_numbers_batch_id_phone")
        batch_op.create_index(
            "ix_task_numbers_batch_id_phone_customer_id", ["batch_id", "phone", "customer_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("task_numbers", schema=None) as batch_op:
        batch_op.drop_index("ix_task_numbers_batch_id_phone_customer_id")
        batch_op.create_index("ix_task_numbers_batch_id_phone", ["batch_id", "phone"])
