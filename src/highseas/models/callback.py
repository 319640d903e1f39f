from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from highseas.clock import utcnow
from highseas.models.base import Base, Timestamps, UUIDPrimaryKey


class CallbackType(StrEnum):
    """What a callback reports: an import into a task, or a pool import (contract §3, §5)."""

    API_CUSTOMER_TO_TASK = "api_customer_to_task"
    API_ASYNC_CUSTOMER = "api_async_customer"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


def _enum(enum: type[StrEnum]) -> Enum:
    return Enum(enum, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class CallbackEndpoint(UUIDPrimaryKey, Timestamps, Base):
    """The URL an agent receives one type of callback at."""

    __tablename__ = "callback_endpoints"
    __table_args__ = (UniqueConstraint("agent_id", "type"),)

    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    type: Mapped[CallbackType] = mapped_column(_enum(CallbackType))
    url: Mapped[str] = mapped_column(String(2048))


class CallbackSecret(Timestamps, Base):
    """An agent's signing secret, sealed under the server key (``highseas/sealing.py``).

    The previous secret is kept for a while after a rotation so that messages are signed with
    both and receivers can switch without losing any.
    """

    __tablename__ = "callback_secrets"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    sealed: Mapped[str] = mapped_column(String(255))
    previous_sealed: Mapped[str | None] = mapped_column(String(255))
    rotated_at: Mapped[datetime | None]


class CallbackMessage(Base):
    """One callback of one batch; its id is the Standard Webhooks ``webhook-id``."""

    __tablename__ = "callback_messages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[CallbackType] = mapped_column(_enum(CallbackType))
    batch_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    # The exact JSON text sent, so that every attempt carries the same bytes.
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[DeliveryState] = mapped_column(_enum(DeliveryState))
    # The job allowed to make the next attempt; a redelivery replaces it, which turns any
    # retry still scheduled for the message into a no-op.
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CallbackAttempt(Base):
    """One try at delivering a message: what the receiver answered, or why there was no answer."""

    __tablename__ = "callback_attempts"

    # SQLite only auto-increments an INTEGER PRIMARY KEY.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[str] = mapped_column(
        ForeignKey("callback_messages.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    status_code: Mapped[int | None]
    duration_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)
