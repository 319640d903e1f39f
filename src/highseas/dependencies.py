"""The request's database session, the job registry and the settings, shared by every router.

Domain dependencies (the caller, the path's user) live with their domain:
``agents/dependencies.py``, ``users/dependencies.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.config import Settings
from highseas.db import Database
from highseas.jobs import Registry


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # scope="function" (below): the commit happens before the response is sent, so a
    # failed commit is an error response, never a 200 for work that was lost.
    database: Database = request.app.state.db
    async with database.transaction() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


# async, like every dependency here: FastAPI runs a plain `def` one in its thread pool, two
# thread hand-offs per request for an attribute read.
async def _job_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.job_registry
    return registry


RegistryDep = Annotated[Registry, Depends(_job_registry)]
"""The job kinds of this app, for services that enqueue work in the request's transaction."""


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]
"""The app's settings (those given to ``create_app``, not re-read from the environment)."""
