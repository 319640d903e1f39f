"""jobs notify trigger: PostgreSQL sends the wake-up of a new job itself

An ``AFTER INSERT`` trigger on ``jobs`` sends ``NOTIFY highseas_jobs, '<queue>'``, which
``jobs/enqueue.py`` sent as a statement of its own until this revision: one round trip fewer
for every job enqueued. Delivered when the inserting transaction commits, never when it rolls
back; identical notifications of one transaction are folded into one. PostgreSQL only.

Revision ID: 7c2e4b91d0a5
Revises: 3f1c9a7d2b6e
Create Date: 2026-11-29 18:15:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7c2e4b91d0a5"
down_revision: str | None = "3f1c9a7d2b6e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The channel is highseas.jobs.notify.CHANNEL (a migration keeps its own copy of what it
# creates).
JOBS_NOTIFY = """
CREATE OR REPLACE FUNCTION highseas_jobs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('highseas_jobs', NEW.queue);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(JOBS_NOTIFY)
        op.execute(
            "CREATE TRIGGER jobs_notify AFTER INSERT ON jobs"
            " FOR EACH ROW EXECUTE FUNCTION highseas_jobs_notify()"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER jobs_notify ON jobs")
        op.execute("DROP FUNCTION highseas_jobs_notify()")
