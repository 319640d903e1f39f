"""The steps of a callback's life as the tests drive them: configure, emit, deliver, look."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import Any

import httpx

from highseas.background import job_registry
from highseas.callbacks import service
from highseas.callbacks.schemas import DeliveryRead
from highseas.config import Settings
from highseas.db import Database
from highseas.jobs import Queue, Worker
from highseas.models import CallbackType
from tests.fixtures.factories import AgentWithToken
from tests.fixtures.receiver import Received

PAYLOAD: dict[str, Any] = {
    "mode": "batch",
    "type": "api_customer_to_task",
    "unique_id": "5b0e7a52-8f3c-4c0e-9d53-0f4b1b7a1c11",
    "status": "success",
    "data": {"url": "http://testserver/agent-api/download-number?key=k", "matched": 2},
    "note": "号码导入完成",
}


async def configure(
    client: httpx.AsyncClient,
    agent: AgentWithToken,
    url: str,
    type: CallbackType = CallbackType.API_CUSTOMER_TO_TASK,
) -> dict[str, Any]:
    response = await client.put(
        f"/agent-api/callback/{type}", json={"url": url}, headers=agent.headers
    )
    assert response.status_code == 200, response.json()
    data: dict[str, Any] = response.json()["data"]
    return data


async def emit(
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    payload: dict[str, Any] = PAYLOAD,
    type: CallbackType = CallbackType.API_CUSTOMER_TO_TASK,
) -> uuid.UUID:
    batch_id = uuid.uuid4()
    async with db.transaction() as session:
        await service.emit(
            session,
            agent_id=uuid.UUID(agent.agent_id),
            type=type,
            batch_id=batch_id,
            payload=payload,
            registry=job_registry(settings),
        )
    return batch_id


async def deliver(db: Database, settings: Settings) -> int:
    """Run every callback job that is due, as a worker would; how many ran."""
    worker = Worker.from_settings(db, settings, registry=job_registry(settings))
    ran = 0
    while await worker.run_one(Queue.CALLBACKS):
        ran += 1
    return ran


async def delivery(db: Database, batch_id: uuid.UUID) -> DeliveryRead:
    async with db.transaction() as session:
        found = (await service.deliveries_of(session, [batch_id])).get(batch_id)
    assert found is not None
    return found


def signed_by(secret: str, received: Received) -> bool:
    """The spec's verification, written out independently of ``highseas.callbacks.signing``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    headers = received.headers
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + received.body
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(f"v1,{digest}", given)
        for given in headers["webhook-signature"].split(" ")
    )
