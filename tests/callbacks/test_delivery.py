"""Delivery to a real receiver on 127.0.0.1: signing, retries, 410, timeouts, redelivery."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook

from highseas.background import job_registry
from highseas.callbacks import service
from highseas.clock import WIRE_FORMAT, to_wire, utcnow
from highseas.config import Settings
from highseas.db import Database
from highseas.errors import NotFound
from highseas.models import CallbackType, DeliveryState, Job, JobState
from tests.callbacks.steps import PAYLOAD, configure, deliver, delivery, emit, signed_by
from tests.fixtures.factories import AgentWithToken
from tests.fixtures.receiver import Receiver, Reply


async def test_fails_twice_then_succeeds_three_signed_attempts_one_id(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    receiver.script(500, 503, 200)
    secret = (await configure(client, agent, receiver.url()))["secret"]
    batch_id = await emit(db, settings, agent)

    assert await deliver(db, settings) == 3

    expected_body = json.dumps(PAYLOAD, ensure_ascii=False, separators=(",", ":")).encode()
    got = receiver.received
    assert len(got) == 3
    found = await delivery(db, batch_id)
    assert {r.headers["webhook-id"] for r in got} == {found.webhook_id}
    assert found.webhook_id.startswith("msg_")
    for request in got:
        assert request.body == expected_body
        assert "号码导入完成".encode() in request.body
        assert request.headers["content-type"] == "application/json"
        assert request.headers["content-length"] == str(len(expected_body))
        assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
        assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
        assert signed_by(secret, request)
        assert Webhook(secret).verify(request.body, request.headers) == PAYLOAD

    assert found.state is DeliveryState.DELIVERED
    assert found.next_attempt_at is None
    assert [a.status_code for a in found.attempts] == [500, 503, 200]
    assert [a.error for a in found.attempts] == ["接收方返回 HTTP 500", "接收方返回 HTTP 503", None]
    assert [a.response for a in found.attempts] == ["ok", "ok", "ok"]
    assert all(a.duration_ms >= 0 for a in found.attempts)
    wire = found.model_dump(mode="json")
    assert wire["state"] == "delivered"
    assert wire["attempts"][0]["at"] == to_wire(found.attempts[0].at)
    assert datetime.strptime(wire["attempts"][0]["at"], WIRE_FORMAT)


async def test_410_stops_the_retries(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.script(410)
    await configure(client, agent, receiver.url())
    batch_id = await emit(db, settings, agent)
    with caplog.at_level(logging.INFO, logger="highseas.callbacks"):
        assert await deliver(db, settings) == 1
    found = await delivery(db, batch_id)
    assert found.state is DeliveryState.FAILED
    assert [a.status_code for a in found.attempts] == [410]
    assert len(receiver.received) == 1
    # A failed attempt, and a message that failed for good, are warnings.
    attempt, failed = caplog.records
    assert attempt.levelno == logging.WARNING and "HTTP 410" in attempt.getMessage()
    assert failed.levelno == logging.WARNING
    assert failed.getMessage().endswith("no more attempts, failed")


async def test_the_schedule_runs_out(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    receiver.script(*[500] * 10)
    await configure(client, agent, receiver.url())
    batch_id = await emit(db, settings, agent)
    # Three retries configured: four attempts in all.
    assert await deliver(db, settings) == 4
    found = await delivery(db, batch_id)
    assert found.state is DeliveryState.FAILED
    assert len(found.attempts) == 4 == len(receiver.received)


async def test_a_retry_waits_for_its_time(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    hourly = settings.model_copy(update={"callback_retry_schedule": [3600]})
    receiver.script(500)
    await configure(client, agent, receiver.url())
    batch_id = await emit(db, hourly, agent)
    assert await deliver(db, hourly) == 1
    found = await delivery(db, batch_id)
    assert found.state is DeliveryState.PENDING
    assert found.next_attempt_at is not None
    wait = found.next_attempt_at - utcnow()
    assert timedelta(minutes=59) < wait <= timedelta(seconds=3600 * 1.1)
    assert await deliver(db, hourly) == 0


async def test_a_timeout_is_an_attempt_with_an_error(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    impatient = settings.model_copy(update={"callback_timeout": 0.3})
    receiver.script(Reply(status=200, delay=1.0), 200)
    await configure(client, agent, receiver.url())
    batch_id = await emit(db, impatient, agent)
    assert await deliver(db, impatient) == 2
    first, second = (await delivery(db, batch_id)).attempts
    assert first.status_code is None
    assert first.error is not None and "超时" in first.error
    assert first.duration_ms >= 300
    assert second.status_code == 200


async def test_a_redirect_is_not_followed(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    receiver.script(Reply(status=302, location=receiver.url(path="/elsewhere")), 200)
    await configure(client, agent, receiver.url())
    batch_id = await emit(db, settings, agent)
    assert await deliver(db, settings) == 2
    assert [r.path for r in receiver.received] == ["/hook", "/hook"]
    first = (await delivery(db, batch_id)).attempts[0]
    assert first.status_code == 302 and first.error is not None and "重定向" in first.error


async def test_only_the_first_kilobyte_of_the_answer_is_kept(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    receiver.script(Reply(status=500, body="错".encode() * 2000), 200)
    await configure(client, agent, receiver.url())
    batch_id = await emit(db, settings, agent)
    await deliver(db, settings)
    kept = (await delivery(db, batch_id)).attempts[0].response
    assert kept is not None
    assert len(kept.encode()) <= 1024 + 3
    assert kept.startswith("错错错")


async def test_a_refused_connection_is_an_attempt_with_an_error(
    client: httpx.AsyncClient, db: Database, settings: Settings, agent: AgentWithToken
) -> None:
    closed = Receiver()
    url = closed.url()  # bound, never listening: the port refuses connections
    await configure(client, agent, url)
    batch_id = await emit(db, settings, agent)
    closed._server.server_close()
    assert await deliver(db, settings) == 4
    found = await delivery(db, batch_id)
    assert found.state is DeliveryState.FAILED
    assert all(a.error and "ConnectError" in a.error for a in found.attempts)


async def test_the_url_is_read_at_send_time(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    await configure(client, agent, receiver.url(path="/old"))
    await emit(db, settings, agent)
    await configure(client, agent, receiver.url(path="/new"))
    await deliver(db, settings)
    assert [r.path for r in receiver.received] == ["/new"]


async def test_a_url_deleted_before_sending_fails_for_good(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    await configure(client, agent, receiver.url())
    batch_id = await emit(db, settings, agent)
    deleted = await client.delete("/agent-api/callback/api_customer_to_task", headers=agent.headers)
    assert deleted.status_code == 200
    assert await deliver(db, settings) == 1
    found = await delivery(db, batch_id)
    assert found.state is DeliveryState.FAILED
    [attempt] = found.attempts
    assert attempt.status_code is None
    assert attempt.error is not None and "未配置 api_customer_to_task" in attempt.error
    assert receiver.received == []


async def test_only_the_configured_type_is_used(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    await configure(client, agent, receiver.url(path="/task"))
    await configure(client, agent, receiver.url(path="/pool"), CallbackType.API_ASYNC_CUSTOMER)
    payload = {"mode": "batch", "type": "api_async_customer", "data": {"created": 1}}
    await emit(db, settings, agent, payload, CallbackType.API_ASYNC_CUSTOMER)
    await deliver(db, settings)
    assert [r.path for r in receiver.received] == ["/pool"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_guard_runs_again_at_send_time(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
    host: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = receiver.url(host=host) + "?token=URL-TOKEN-SECRET"
    await configure(client, agent, url)
    batch_id = await emit(db, settings, agent)
    strict = settings.model_copy(update={"callback_allow_private": False})
    with caplog.at_level(logging.INFO, logger="highseas.callbacks"):
        assert await deliver(db, strict) == 4
    found = await delivery(db, batch_id)
    assert found.state is DeliveryState.FAILED
    assert all(a.error and "回环地址" in a.error for a in found.attempts)
    assert receiver.received == []
    # Receivers put tokens in their URLs: neither the log nor the attempts repeat it.
    assert any("回环地址" in m for m in caplog.messages)
    assert not [m for m in caplog.messages if "URL-TOKEN-SECRET" in m]
    assert not [a for a in found.attempts if a.error and "URL-TOKEN-SECRET" in a.error]


async def test_redeliver_sends_once_more_with_the_same_id(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    secret = (await configure(client, agent, receiver.url()))["secret"]
    batch_id = await emit(db, settings, agent)
    await deliver(db, settings)
    async with db.transaction() as session:
        await service.redeliver(session, batch_id=batch_id, registry=job_registry(settings))
    assert (await delivery(db, batch_id)).state is DeliveryState.PENDING
    assert await deliver(db, settings) == 1

    first, again = receiver.received
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    assert first.body == again.body
    assert signed_by(secret, again)
    found = await delivery(db, batch_id)
    assert found.state is DeliveryState.DELIVERED
    assert [a.status_code for a in found.attempts] == [200, 200]


async def test_redeliver_with_a_new_payload(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    receiver.script(410)
    await configure(client, agent, receiver.url())
    batch_id = await emit(db, settings, agent)
    await deliver(db, settings)
    fresh = {**PAYLOAD, "data": {"url": "http://testserver/agent-api/download-number?key=new"}}
    async with db.transaction() as session:
        await service.redeliver(
            session, batch_id=batch_id, registry=job_registry(settings), payload=fresh
        )
    await deliver(db, settings)
    gone, again = receiver.received
    assert gone.headers["webhook-id"] == again.headers["webhook-id"]
    assert json.loads(again.body) == fresh
    assert (await delivery(db, batch_id)).state is DeliveryState.DELIVERED


async def test_redeliver_supersedes_a_scheduled_retry(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    hourly = settings.model_copy(update={"callback_retry_schedule": [3600]})
    receiver.script(500)
    await configure(client, agent, receiver.url())
    batch_id = await emit(db, hourly, agent)
    await deliver(db, hourly)
    async with db.transaction() as session:
        await service.redeliver(session, batch_id=batch_id, registry=job_registry(hourly))
    assert await deliver(db, hourly) == 1
    assert (await delivery(db, batch_id)).state is DeliveryState.DELIVERED

    # The retry scheduled an hour ahead comes due: it is a no-op.
    async with db.transaction() as session:
        await session.execute(
            update(Job).where(Job.state == JobState.QUEUED).values(run_at=utcnow())
        )
    assert await deliver(db, hourly) == 1
    assert len(receiver.received) == 2
    assert len((await delivery(db, batch_id)).attempts) == 2


async def test_redeliver_needs_a_message(db: Database, settings: Settings) -> None:
    async with db.transaction() as session:
        with pytest.raises(NotFound) as missing:
            await service.redeliver(session, batch_id=uuid.uuid4(), registry=job_registry(settings))
    assert missing.value.reason == "callback_message_not_found"


async def test_one_message_per_batch(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    await configure(client, agent, receiver.url())
    batch_id = await emit(db, settings, agent)
    first = (await delivery(db, batch_id)).webhook_id
    async with db.transaction() as session:
        await service.emit(
            session,
            agent_id=uuid.UUID(agent.agent_id),
            type=CallbackType.API_CUSTOMER_TO_TASK,
            batch_id=batch_id,
            payload={"other": True},
            registry=job_registry(settings),
        )
    assert (await delivery(db, batch_id)).webhook_id == first
    assert await deliver(db, settings) == 1
    assert json.loads(receiver.received[0].body) == PAYLOAD


async def test_no_delivery_without_a_message(db: Database) -> None:
    async with db.transaction() as session:
        assert await service.deliveries_of(session, [uuid.uuid4()]) == {}


async def test_a_payload_must_be_json(
    db: Database, settings: Settings, agent: AgentWithToken
) -> None:
    with pytest.raises(ValueError, match="JSON"):
        await emit(db, settings, agent, {"id": uuid.uuid4()})


async def test_after_a_rotation_both_secrets_sign(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    old = (await configure(client, agent, receiver.url()))["secret"]
    rotated = await client.post("/agent-api/callback/secret/rotate", headers=agent.headers)
    new = rotated.json()["data"]["secret"]
    await emit(db, settings, agent)
    await deliver(db, settings)
    [request] = receiver.received
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert signed_by(new, request) and signed_by(old, request)


async def test_a_secret_that_no_longer_opens_fails_the_message(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    receiver: Receiver,
) -> None:
    await configure(client, agent, receiver.url())
    batch_id = await emit(db, settings, agent)
    rekeyed = settings.model_copy(update={"secret_key": "n" * 40})
    assert await deliver(db, rekeyed) == 1
    found = await delivery(db, batch_id)
    assert found.state is DeliveryState.FAILED
    assert found.attempts[0].error is not None and "无法解密" in found.attempts[0].error
    assert receiver.received == []
