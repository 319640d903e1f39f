from __future__ import annotations

import uuid
from datetime import datetime
from enum import IntEnum

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from highseas.clock import utcnow
from highseas.models.base import Base, BigIntPrimaryKey, Timestamps, UUIDPrimaryKey


class TaskStatus(IntEnum):
    PAUSED = 1
    RUNNING = 2
    WAITING = 3


class NumberStatus(IntEnum):
    WAITING = 0


class CallTask(UUIDPrimaryKey, Timestamps, Base):
    """A call task (外呼任务) of a user: the numbers an AI agent will call."""

    __tablename__ = "call_tasks"
    __table_args__ = (Index("ix_call_tasks_user_id_created_at", "user_id", "created_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    sub_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sub_users.id", ondelete="SET NULL")
    )
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[int] = mapped_column(SmallInteger, default=TaskStatus.WAITING)


class TaskNumber(BigIntPrimaryKey, Base):
    """A phone number in a call task, at most once per task (the unique constraint is what
    keeps concurrent imports from adding it twice)."""

    __tablename__ = "task_numbers"
    __table_args__ = (
        UniqueConstraint("task_id", "phone"),
        # A task's numbers in the order they arrived (the numbers list pages on it).
        Index("ix_task_numbers_task_id_id", "task_id", "id"),
        # The download of a batch: what it added, read from this index alone and sorted by
        # customer. Keyed by phone so that an import chunk (a range of phones) fills one
        # stretch of it (docs/adr/0008-import-chunks-by-phone.md).
        Index("ix_task_numbers_batch_id_phone_customer_id", "batch_id", "phone", "customer_id"),
        {"sqlite_autoincrement": True},
    )

    # No foreign keys on this table: checking two parent rows for every imported number was
    # a third of an import's time on PostgreSQL (bench/README.md). The import checks the
    # task when it is accepted, and neither tasks nor batches are ever deleted.
    task_id: Mapped[uuid.UUID]
    phone: Mapped[str] = mapped_column(String(11))
    # No foreign key: a task keeps its numbers when the pool customer is deleted.
    customer_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    batch_id: Mapped[uuid.UUID | None]
    status: Mapped[int] = mapped_column(SmallInteger, default=NumberStatus.WAITING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
