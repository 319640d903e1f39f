from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from highseas.clock import utcnow
from highseas.models.base import Base


class DownloadKey(Base):
    """The credential of a batch's download link: only its SHA-256 is kept (contract §3)."""

    __tablename__ = "download_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    batch_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyKey(Base):
    """An ``Idempotency-Key`` an agent used, the request it came with and the batch it made.

    ``batch_id`` has no foreign key on purpose: the key is claimed before its batch exists, in
    the same transaction, so that two requests with one key cannot both make a batch."""

    __tablename__ = "idempotency_keys"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # The request as given (before it is checked against the pool, the callback and the
    # agent's key): a retry of an accepted request gets its batch even when a check would now
    # fail (a component deleted, the callback URL removed since).
    given_hash: Mapped[str | None] = mapped_column(String(64))
    batch_id: Mapped[uuid.UUID]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
