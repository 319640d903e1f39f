from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from highseas.clock import WireTime
from highseas.models import CallbackType, DeliveryState

MAX_URL_LENGTH = 2048

CallbackUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_URL_LENGTH)
]


class CallbackUpdate(BaseModel):
    url: CallbackUrl = Field(description="回调地址 (http or https, a public address)")


class CallbackRead(BaseModel):
    type: CallbackType
    url: str
    secret: str = Field(description="签名密钥 (Standard Webhooks, one per agent)")
    created_at: WireTime
    updated_at: WireTime


class CallbackDeleted(BaseModel):
    type: CallbackType
    url: str


class SecretRead(BaseModel):
    secret: str
    previous_valid_until: WireTime | None = Field(
        description="until when messages are also signed with the previous secret"
    )


class AttemptRead(BaseModel):
    at: WireTime
    status_code: int | None
    duration_ms: int
    error: str | None = Field(description="why the attempt failed; null when it was delivered")
    response: str | None = Field(description="the first 1 KB of the receiver's answer")


class DeliveryRead(BaseModel):
    """How the callback message of a batch is going (contract §4 ``delivery``)."""

    webhook_id: str
    state: DeliveryState
    attempts: list[AttemptRead]
    next_attempt_at: WireTime | None
