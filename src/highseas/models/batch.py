from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from highseas.clock import utcnow
from highseas.models.base import Base


class BatchType(StrEnum):
    """What a batch does; also the callback type that reports it (contract §3, §5)."""

    CUSTOMER_TO_TASK = "api_customer_to_task"
    ASYNC_CUSTOMER = "api_async_customer"


class BatchState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def _enum(cls: type[StrEnum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class Batch(Base):
    """One accepted piece of asynchronous work (its ``id`` is the ``unique_id`` of the API)."""

    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_user_id_accepted_at", "user_id", "accepted_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[BatchType] = mapped_column(_enum(BatchType))
    state: Mapped[BatchState] = mapped_column(_enum(BatchState), default=BatchState.QUEUED)
    # What was accepted, normalised: the job works from this alone.
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    # How far the job got (imports resume from here after a crash).
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The callback's ``data`` once finished (counts, errors, reason on failure).
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # customer_to_task: the task the numbers go into.
    task_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("call_tasks.id", ondelete="CASCADE")
    )
    sub_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sub_users.id", ondelete="SET NULL")
    )
    encryption: Mapped[bool] = mapped_column(default=False)
    accepted_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
