from __future__ import annotations

import pytest

from highseas.db import Database
from tests.fixtures.factories import AgentWithToken, make_agent


@pytest.fixture
async def agent(db: Database) -> AgentWithToken:
    return await make_agent(db)
