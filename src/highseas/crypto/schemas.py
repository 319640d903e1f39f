from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from highseas.clock import WireTime
from highseas.crypto.cipher import ALGORITHM


class EncryptionUpdate(BaseModel):
    # Platform clients send more fields than highseas uses: unknown ones are ignored (§1).
    model_config = ConfigDict(extra="ignore")

    enabled: bool = Field(description="true: 开启接口加密; false: 关闭 (the key is kept)")


class EncryptionRead(BaseModel):
    enabled: bool
    algorithm: str = Field(ALGORITHM, description="always AES-256-GCM")
    key: str | None = Field(
        description="the agent's 32-byte key, standard base64; null until first enabled"
    )
    previous_valid_until: WireTime | None = Field(
        description="after a rotation: until when the previous key still decrypts inputs"
    )
