from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from highseas.models.base import Base, Timestamps


class EncryptionSetting(Timestamps, Base):
    """An agent's interface encryption (接口加密, contract §6): on or off, and its AES key,
    sealed under the server key (``highseas/sealing.py``).

    The key is made on the first enable and kept when encryption is switched off. After a
    rotation the previous key is kept, and decrypts for ``HIGHSEAS_ENCRYPTION_GRACE``.
    """

    __tablename__ = "encryption_settings"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(default=False)
    sealed_key: Mapped[str] = mapped_column(String(255))
    previous_sealed_key: Mapped[str | None] = mapped_column(String(255))
    rotated_at: Mapped[datetime | None]
