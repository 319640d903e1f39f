from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from highseas.models.base import Base, BigIntPrimaryKey, Timestamps, new_public_id


class ComponentType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"


class ValidateRule(StrEnum):
    REQUIRED = "required"
    INTEGER = "integer"
    DATE = "date"
    SOMETIMES = "sometimes"


class ComponentStatus:
    DISABLED = 0
    ENABLED = 1


class Component(BigIntPrimaryKey, Timestamps, Base):
    """A custom field (公海自定义组件) of one user's pool.

    The integer ``id`` keys the values table (small, ordered); the API only sees ``public_id``.
    """

    __tablename__ = "components"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    public_id: Mapped[uuid.UUID] = mapped_column(unique=True, default=new_public_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(16))
    sort: Mapped[int] = mapped_column(default=0)
    validate: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[int] = mapped_column(SmallInteger, default=ComponentStatus.ENABLED)
