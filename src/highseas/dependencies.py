"""The request's database session, shared by every router.

Domain dependencies (the caller, the path's user) live with their domain:
``agents/dependencies.py``, ``users/dependencies.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.db import Database


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # scope="function" (below): the commit happens before the response is sent, so a
    # failed commit is an error response, never a 200 for work that was lost.
    database: Database = request.app.state.db
    async with database.transaction() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
