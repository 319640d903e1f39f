from __future__ import annotations

from fastapi import APIRouter

from highseas.agents.dependencies import CallerDep
from highseas.crypto import service
from highseas.crypto.schemas import EncryptionRead, EncryptionUpdate
from highseas.dependencies import SessionDep, SettingsDep
from highseas.envelope import Envelope, ok
from highseas.request_input import JsonInputRoute

router = APIRouter(prefix="/agent-api", tags=["encryption"], route_class=JsonInputRoute)


@router.put("/encryption", response_model=Envelope[EncryptionRead])
async def put_encryption(
    body: EncryptionUpdate, caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> Envelope[EncryptionRead]:
    """Switch interface encryption (接口加密) on or off; answers with the agent's AES-256-GCM
    key, made on the first switch on and kept when switched off."""
    configured = await service.configure(session, caller.agent_id, body.enabled, settings)
    return ok(configured, "设置成功")


@router.get("/encryption", response_model=Envelope[EncryptionRead])
async def get_encryption(
    caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> Envelope[EncryptionRead]:
    """Whether interface encryption is on, and the agent's key (null before the first enable)."""
    return ok(await service.read_setting(session, caller.agent_id, settings))


@router.post("/encryption/rotate", response_model=Envelope[EncryptionRead])
async def rotate_key(
    caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> Envelope[EncryptionRead]:
    """Replace the key; the previous one still decrypts inputs for HIGHSEAS_ENCRYPTION_GRACE
    (default 24 h). Outputs use the new key at once."""
    return ok(await service.rotate(session, caller.agent_id, settings), "密钥已更新")
