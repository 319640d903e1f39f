from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from highseas.models.base import Base, BigIntPrimaryKey, Timestamps, new_public_id

# SQLite only auto-increments (and clusters on) an INTEGER PRIMARY KEY.
BIGINT = BigInteger().with_variant(Integer, "sqlite")


class Customer(BigIntPrimaryKey, Timestamps, Base):
    """A phone number in one user's pool (客户公海), with its derived carrier and region.

    The integer ``id`` orders the pool by arrival: an import takes the newest as its snapshot
    bound. The API only sees ``public_id`` (time-ordered, so its index appends).
    """

    __tablename__ = "customers"
    __table_args__ = (
        # A phone once per pool. On PostgreSQL it also carries the id, so an import chunk
        # reads its customers from this index alone (SQLite's index holds the rowid anyway).
        UniqueConstraint("user_id", "phone", postgresql_include=["id"]),
        Index("ix_customers_user_id_created_at", "user_id", "created_at"),
        # Ids never come back after a delete: they order arrivals and bound snapshots.
        {"sqlite_autoincrement": True},
    )

    public_id: Mapped[uuid.UUID] = mapped_column(unique=True, default=new_public_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    sub_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sub_users.id", ondelete="SET NULL")
    )
    phone: Mapped[str] = mapped_column(String(11))
    name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    company: Mapped[str | None] = mapped_column(String(200))
    sex: Mapped[int | None] = mapped_column(SmallInteger)
    sort: Mapped[int | None]
    extra: Mapped[Any | None] = mapped_column(JSON)
    operator: Mapped[int] = mapped_column(SmallInteger)
    province: Mapped[str | None] = mapped_column(String(32))
    city: Mapped[str | None] = mapped_column(String(32))
    # The values as given, keyed by component public id: what reads show. Filters use
    # CustomerValue, its indexed copy.
    components: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CustomerValue(Base):
    """One component value of one customer, as an index key: filters seek here.

    Text is kept as is, dates as ``YYYY-MM-DD`` and numbers in an order-preserving text
    encoding, so one B-tree answers eq, in, prefix and ranges for every type on both
    databases (docs/adr/0005-component-values.md). Empty values have no row.
    """

    __tablename__ = "customer_values"
    __table_args__ = (
        PrimaryKeyConstraint("component_id", "value_key", "customer_id"),
        Index("ix_customer_values_customer_id", "customer_id"),
        {"sqlite_with_rowid": False},
    )

    component_id: Mapped[int] = mapped_column(
        BIGINT, ForeignKey("components.id", ondelete="CASCADE")
    )
    # Byte order on both databases (SQLite BINARY, PostgreSQL "C"): prefix filters are ranges.
    value_key: Mapped[str] = mapped_column(
        String(255).with_variant(String(255, collation="C"), "postgresql")
    )
    customer_id: Mapped[int] = mapped_column(BIGINT, ForeignKey("customers.id", ondelete="CASCADE"))
