from __future__ import annotations

import uuid

from pydantic import BaseModel

from highseas.clock import WireTime


class TokenRead(BaseModel):
    valid: bool = True
    agent_id: uuid.UUID
    agent_name: str
    token_id: uuid.UUID
    token_prefix: str
    created_at: WireTime
    expires_at: WireTime | None
