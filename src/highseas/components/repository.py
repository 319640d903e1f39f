from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.models import Component, CustomerValue


async def of_user(session: AsyncSession, user_id: uuid.UUID) -> list[Component]:
    query = select(Component).where(Component.user_id == user_id)
    result = await session.execute(query.order_by(Component.sort, Component.id))
    return list(result.scalars())


# Built once: every filter with components resolves them (an accept, an import job).
_BY_PUBLIC_IDS = select(Component).where(
    Component.user_id == bindparam("user_id"),
    Component.public_id.in_(bindparam("public_ids", expanding=True)),
)


async def by_public_ids(
    session: AsyncSession, user_id: uuid.UUID, public_ids: Collection[uuid.UUID]
) -> list[Component]:
    if not public_ids:
        return []
    found = await session.execute(_BY_PUBLIC_IDS, {"user_id": user_id, "public_ids": public_ids})
    return list(found.scalars())


async def name_taken(
    session: AsyncSession, user_id: uuid.UUID, name: str, *, other_than: int | None = None
) -> bool:
    query = select(Component.id).where(Component.user_id == user_id, Component.name == name)
    if other_than is not None:
        query = query.where(Component.id != other_than)
    return (await session.execute(query.limit(1))).first() is not None


async def has_values(session: AsyncSession, component_id: int) -> bool:
    query = select(exists().where(CustomerValue.component_id == component_id))
    return bool((await session.execute(query)).scalar())


async def add(session: AsyncSession, component: Component) -> None:
    session.add(component)
    await session.flush()


async def delete_many(session: AsyncSession, component_ids: Collection[int]) -> None:
    # Their values go by ON DELETE CASCADE (customer_values is keyed by component first).
    await session.execute(delete(Component).where(Component.id.in_(component_ids)))
