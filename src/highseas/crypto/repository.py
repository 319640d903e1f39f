from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.clock import utcnow
from highseas.models import EncryptionSetting


def _insert(session: AsyncSession) -> Any:
    # ON CONFLICT is not portable SQL: each dialect has its own insert construct.
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(EncryptionSetting)
    return sqlite.insert(EncryptionSetting)


async def setting_of(
    session: AsyncSession, agent_id: uuid.UUID, *, for_update: bool = False
) -> EncryptionSetting | None:
    query = select(EncryptionSetting).where(EncryptionSetting.agent_id == agent_id)
    if for_update:
        query = query.with_for_update()
    return (
        await session.execute(query.execution_options(populate_existing=True))
    ).scalar_one_or_none()


async def add_if_missing(
    session: AsyncSession, agent_id: uuid.UUID, *, sealed_key: str, enabled: bool
) -> None:
    """The agent's first key; a concurrent first enable that won keeps its own."""
    now = utcnow()
    statement = (
        _insert(session)
        .values(
            agent_id=agent_id,
            enabled=enabled,
            sealed_key=sealed_key,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["agent_id"])
    )
    await session.execute(statement)
