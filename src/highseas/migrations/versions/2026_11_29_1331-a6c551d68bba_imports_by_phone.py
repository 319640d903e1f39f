"""imports by phone: the download index by phone, the pool's phone index covers the id

Import chunks are ranges of phones now (docs/adr/0008-import-chunks-by-phone.md): the
download pages a batch's numbers by phone, and this index fills in the chunks' order. On
PostgreSQL the pool's unique (user_id, phone) index also carries the id, so a chunk reads
its customers from the index alone.
An import that had committed chunks by customer id range before the upgrade cannot resume
by phone: it ends with the documented `failed` callback, its numbers stay in the task, and
sending the request again adds the rest. Let running imports finish before upgrading past
this revision (docs/deploy.md).

Revision ID: a6c551d68bba
Revises: fce7fe30f603
Create Date: 2026-11-29 13:31:35.574474
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a6c551d68bba"
down_revision: str | None = "fce7fe30f603"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _phone_index(include: str) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE customers DROP CONSTRAINT uq_customers_user_id_phone")
        op.execute(
            "ALTER TABLE customers ADD CONSTRAINT uq_customers_user_id_phone"
            f" UNIQUE (user_id, phone){include}"
        )


def upgrade() -> None:
    with op.batch_alter_table("task_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_numbers_batch_id_customer_id"))
        batch_op.create_index("ix_task_numbers_batch_id_phone", ["batch_id", "phone"], unique=False)
    _phone_index(" INCLUDE (id)")


def downgrade() -> None:
    with op.batch_alter_table("task_numbers", schema=None) as batch_op:
        batch_op.drop_index("ix_task_numbers_batch_id_phone")
        batch_op.create_index(
            batch_op.f("ix_task_numbers_batch_id_customer_id"), ["batch_id", "customer_id"]
        )
    _phone_index("")
