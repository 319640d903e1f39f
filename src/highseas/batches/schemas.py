from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from highseas.callbacks.schemas import DeliveryRead
from highseas.clock import WireTime
from highseas.envelope import DEFAULT_PER_PAGE, Page, PerPage
from highseas.models import BatchState, BatchType


class BatchRead(BaseModel):
    """查看回调数据 (contract §4): the callback message of a batch and how it is going."""

    type: BatchType
    mode: Literal["batch"] = "batch"
    unique_id: uuid.UUID
    user_id: uuid.UUID
    task_id: uuid.UUID | None = None
    status: Literal["success", "failed"] | None = Field(
        description="the callback's status once finished, else null"
    )
    data: dict[str, Any] | None = Field(description="the callback's data once finished")
    state: BatchState
    accepted_at: WireTime
    finished_at: WireTime | None
    delivery: DeliveryRead | None = Field(
        description="the callback message's delivery, attempt by attempt; null if none"
    )


class BatchQuery(BaseModel):
    """batches: the filters and the page, from the query string or a JSON body, as the
    other lists with filters take them."""

    model_config = ConfigDict(extra="ignore")

    type: BatchType | None = None
    state: BatchState | None = None
    task_id: uuid.UUID | None = None
    page: Page = 1
    per_page: PerPage = DEFAULT_PER_PAGE
