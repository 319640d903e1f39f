"""Callbacks: where an agent receives them, the signing secret, and the delivery of messages.

Configuration: one URL per agent and callback type, checked by the SSRF guard when saved;
one signing secret per agent, sealed at rest, kept across URL changes.

Delivery (docs/adr/0004-callbacks.md): ``emit`` stores a message and enqueues the job for its
first attempt in the caller's transaction. Each attempt is one job: ``plan_attempt`` reads the
URL and secret at send time, the job sends (``sender.send``), and ``record_attempt`` logs the
attempt and, in the same transaction, settles the message or enqueues the next attempt per
``callback_retry_schedule``. A message's ``job_id`` names the one job allowed to make its next
attempt, so a redelivery supersedes a retry that is still scheduled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from highseas import download_links, sealing
from highseas.callbacks import repository, signing, ssrf
from highseas.callbacks.schedule import retry_delay
from highseas.callbacks.schemas import (
    AttemptRead,
    CallbackDeleted,
    CallbackRead,
    DeliveryRead,
    SecretRead,
)
from highseas.callbacks.sender import Outcome, Outgoing
from highseas.clock import utcnow
from highseas.config import Settings
from highseas.envelope import PageParams
from highseas.errors import HighseasError, NotFound, ValidationFailed
from highseas.jobs import Registry, enqueue
from highseas.metrics import CALLBACK_ATTEMPTS, CallbackOutcome
from highseas.models import (
    CallbackEndpoint,
    CallbackMessage,
    CallbackSecret,
    CallbackType,
    DeliveryState,
)

logger = logging.getLogger(__name__)

DELIVERY_JOB = "callbacks.deliver"
# After a rotation messages carry both signatures for this long, so that a receiver can
# switch to the new secret without rejecting anything in between.
ROTATION_OVERLAP = timedelta(hours=24)
GONE = 410
_SEALED_AS = sealing.CALLBACK_SECRET


# Configuration


async def configure(
    session: AsyncSession,
    agent_id: uuid.UUID,
    type: CallbackType,
    url: str,
    settings: Settings,
) -> CallbackRead:
    await _check_url(url, settings)
    endpoint = await repository.upsert_endpoint(session, agent_id, type, url)
    secret = await _secret(session, agent_id, settings)
    return _read(endpoint, secret)


async def read_callback(
    session: AsyncSession, agent_id: uuid.UUID, type: CallbackType, settings: Settings
) -> CallbackRead:
    endpoint = await repository.endpoint_of(session, agent_id, type)
    if endpoint is None:
        raise _not_configured(type)
    return _read(endpoint, await _secret(session, agent_id, settings))


async def list_callbacks(
    session: AsyncSession, agent_id: uuid.UUID, params: PageParams, settings: Settings
) -> tuple[list[CallbackRead], int]:
    endpoints, total = await repository.endpoints_of(
        session, agent_id, offset=params.offset, limit=params.per_page
    )
    if not endpoints:
        return [], total
    secret = await _secret(session, agent_id, settings)
    return [_read(endpoint, secret) for endpoint in endpoints], total


async def remove(session: AsyncSession, agent_id: uuid.UUID, type: CallbackType) -> CallbackDeleted:
    url = await repository.delete_endpoint(session, agent_id, type)
    if url is None:
        raise _not_configured(type)
    return CallbackDeleted(type=type, url=url)


async def rotate_secret(
    session: AsyncSession, agent_id: uuid.UUID, settings: Settings
) -> SecretRead:
    key = settings.resolved_secret_key()
    owner = agent_id.bytes
    plain = signing.new_secret()
    sealed = sealing.seal(key, plain, owner=owner, purpose=_SEALED_AS)
    await repository.add_secret_if_missing(session, agent_id, sealed)
    secret = await repository.secret_of(session, agent_id, for_update=True)
    assert secret is not None
    if secret.sealed == sealed:
        return SecretRead(secret=plain, previous_valid_until=None)
    now = utcnow()
    # A secret sealed under an older server key cannot sign any more: nothing to keep.
    secret.previous_sealed = secret.sealed if _opens(key, secret.sealed, owner) else None
    secret.sealed = sealed
    secret.rotated_at = now
    await session.flush()
    until = now + ROTATION_OVERLAP if secret.previous_sealed is not None else None
    return SecretRead(secret=plain, previous_valid_until=until)


async def is_configured(session: AsyncSession, agent_id: uuid.UUID, type: CallbackType) -> bool:
    return await repository.is_configured(session, agent_id, type)


def not_configured(type: CallbackType) -> ValidationFailed:
    """The refusal of work whose result could only be reported to a callback that is not
    configured."""
    return ValidationFailed(
        f"未配置 {type} 回调地址：请先调用 PUT /agent-api/callback/{type} "
        '并在请求体中给出 {"url": "<接收回调的地址>"}',
        reason="callback_not_configured",
    )


async def _check_url(url: str, settings: Settings) -> None:
    try:
        parsed = ssrf.parse(url)
        # The request's transaction is open (on SQLite it holds the write lock): bound the wait.
        async with asyncio.timeout(settings.callback_timeout):
            await ssrf.resolve(parsed, allow_private=settings.callback_allow_private)
    except ssrf.UrlRefused as exc:
        raise ValidationFailed.field(
            "url", f"参数 url 无效：{exc.message}", reason=exc.reason
        ) from exc
    except TimeoutError as exc:
        message = f"参数 url 无效：回调地址 {url} 的主机名解析超时"
        raise ValidationFailed.field("url", message, reason="callback_url_unresolvable") from exc


async def _secret(session: AsyncSession, agent_id: uuid.UUID, settings: Settings) -> str:
    """The agent's current secret in plain text, created on first use."""
    key = settings.resolved_secret_key()
    secret = await repository.secret_of(session, agent_id)
    if secret is None:
        sealed = sealing.seal(key, signing.new_secret(), owner=agent_id.bytes, purpose=_SEALED_AS)
        await repository.add_secret_if_missing(session, agent_id, sealed)
        secret = await repository.secret_of(session, agent_id)
        assert secret is not None
    try:
        return sealing.unseal(key, secret.sealed, owner=agent_id.bytes, purpose=_SEALED_AS)
    except sealing.Unsealable as exc:
        raise _unreadable_secret() from exc


def _signing_secrets(secret: CallbackSecret, key: str, now: datetime) -> list[str]:
    owner = secret.agent_id.bytes
    found = [sealing.unseal(key, secret.sealed, owner=owner, purpose=_SEALED_AS)]
    overlapping = secret.rotated_at is not None and now < secret.rotated_at + ROTATION_OVERLAP
    if secret.previous_sealed is not None and overlapping:
        found.append(sealing.unseal(key, secret.previous_sealed, owner=owner, purpose=_SEALED_AS))
    return found


def _opens(key: str, sealed: str, owner: bytes) -> bool:
    try:
        sealing.unseal(key, sealed, owner=owner, purpose=_SEALED_AS)
    except sealing.Unsealable:
        return False
    return True


def _read(endpoint: CallbackEndpoint, secret: str) -> CallbackRead:
    return CallbackRead(
        type=endpoint.type,
        url=endpoint.url,
        secret=secret,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def _not_configured(type: CallbackType) -> NotFound:
    return NotFound(f"未配置 {type} 回调地址", reason="callback_not_found")


def _unreadable_secret() -> HighseasError:
    return HighseasError(
        "回调签名密钥无法解密（服务器密钥 HIGHSEAS_SECRET_KEY 已更换）："
        "请调用 POST /agent-api/callback/secret/rotate 生成新密钥",
        reason="callback_secret_unreadable",
    )


# Delivery


async def emit(
    session: AsyncSession,
    *,
    agent_id: uuid.UUID,
    type: CallbackType,
    batch_id: uuid.UUID,
    payload: dict[str, Any],
    registry: Registry,
) -> None:
    """Store the callback message of a batch and enqueue its delivery, in the caller's transaction.

    One message per batch: emitting again for the same batch sends nothing (a re-run batch
    job must not send twice). The URL is read when sending.
    """
    if await repository.message_of_batch(session, batch_id) is not None:
        return
    message_id = f"msg_{uuid.uuid4().hex}"
    run_at = utcnow()
    # The delivery job first, so the message is inserted with its job_id (no UPDATE after).
    job_id = await _enqueue_attempt(
        session, registry, message_id, batch_id, attempt=1, run_at=run_at
    )
    await repository.add_message(
        session,
        id=message_id,
        agent_id=agent_id,
        type=type,
        batch_id=batch_id,
        body=_encode(payload),
        state=DeliveryState.PENDING,
        job_id=job_id,
        next_attempt_at=run_at,
    )


async def redeliver(
    session: AsyncSession,
    *,
    batch_id: uuid.UUID,
    registry: Registry,
    payload: dict[str, Any] | None = None,
) -> CallbackMessage:
    """Send the batch's message again, same ``webhook-id``, with a fresh retry schedule.

    Whatever state the message is in, its next attempt is now; a retry still scheduled is
    superseded. ``payload`` replaces the stored body (a fresh download link), else the
    stored body is sent again.
    """
    message = await repository.message_of_batch(session, batch_id, for_update=True)
    if message is None:
        raise NotFound(
            f"批次 {batch_id} 还没有回调消息，无法重发", reason="callback_message_not_found"
        )
    if payload is not None:
        message.body = _encode(payload)
    await _schedule(session, registry, message, attempt=1, run_at=utcnow())
    return message


async def deliveries_of(
    session: AsyncSession, batch_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, DeliveryRead]:
    """How the batches' callbacks are going, attempt by attempt, in two queries; a batch
    without a message has no entry."""
    messages = await repository.messages_of_batches(session, batch_ids)
    attempts: dict[str, list[AttemptRead]] = {m.id: [] for m in messages}
    if messages:
        for attempt in await repository.attempts_of_messages(session, list(attempts)):
            attempts[attempt.message_id].append(
                AttemptRead.model_validate(attempt, from_attributes=True)
            )
    return {
        m.batch_id: DeliveryRead(
            webhook_id=m.id,
            state=m.state,
            attempts=attempts[m.id],
            next_attempt_at=m.next_attempt_at,
        )
        for m in messages
    }


async def plan_attempt(
    session: AsyncSession, *, message_id: str, job_id: int, attempt: int, settings: Settings
) -> Outgoing | None:
    """What the job ``job_id`` is to send now, or None when there is nothing to send.

    Nothing to send: the job was superseded (a redelivery) or the message is settled; or no
    URL is configured any more, which is recorded as the message's terminal failure.
    """
    delivery = await repository.delivery_of(session, message_id)
    if delivery is None:
        return None
    message, endpoint, secret = delivery
    if message.state is not DeliveryState.PENDING or message.job_id != job_id:
        return None
    if endpoint is None or secret is None:
        await _fail(session, message, _unsent(f"未配置 {message.type} 回调地址：消息无法发送"))
        return None
    server_key = settings.resolved_secret_key()
    try:
        secrets = _signing_secrets(secret, server_key, utcnow())
    except sealing.Unsealable:
        logger.error("callback %s: the agent's signing secret does not unseal", message.id)
        await _fail(session, message, _unsent(_unreadable_secret().message))
        return None
    # The stored body's download link has a marker where its key goes (download_links.py).
    body = download_links.shown(message.body, server_key).encode()
    return Outgoing(message_id=message.id, url=endpoint.url, body=body, secrets=secrets)


async def record_attempt(
    session: AsyncSession,
    *,
    message_id: str,
    job_id: int,
    attempt: int,
    outcome: Outcome,
    registry: Registry,
    settings: Settings,
) -> None:
    """Log the attempt; if the job still owns the message, settle it or schedule the next try."""
    message = await repository.locked_message(session, message_id)
    if message is None:
        return
    await _log(session, message, outcome)
    if message.state is not DeliveryState.PENDING or message.job_id != job_id:
        # Superseded while sending (a redelivery): the attempt is logged, the schedule is not ours.
        return
    if outcome.delivered:
        _finish(message, DeliveryState.DELIVERED)
        return
    # 410 Gone is the receiver saying "stop": the one answer that ends the retries early.
    delay = (
        None
        if outcome.status_code == GONE
        else retry_delay(settings.callback_retry_schedule, attempt)
    )
    if delay is None:
        logger.warning("callback %s (%s): no more attempts, failed", message.id, message.type)
        _finish(message, DeliveryState.FAILED)
        return
    run_at = utcnow() + timedelta(seconds=delay)
    await _schedule(session, registry, message, attempt=attempt + 1, run_at=run_at)


async def _fail(session: AsyncSession, message: CallbackMessage, outcome: Outcome) -> None:
    CALLBACK_ATTEMPTS.labels(CallbackOutcome.UNSENT).inc()
    await _log(session, message, outcome)
    _finish(message, DeliveryState.FAILED)


async def _log(session: AsyncSession, message: CallbackMessage, outcome: Outcome) -> None:
    # A failed attempt is a warning: a receiver that is down shows in a log alert.
    logger.log(
        logging.INFO if outcome.delivered else logging.WARNING,
        "callback %s (%s): %s in %d ms",
        message.id,
        message.type,
        outcome.status_code if outcome.error is None else outcome.error,
        outcome.duration_ms,
    )
    await repository.add_attempt(
        session,
        message_id=message.id,
        at=outcome.at,
        status_code=outcome.status_code,
        duration_ms=outcome.duration_ms,
        error=outcome.error,
        response=outcome.response,
    )


def _finish(message: CallbackMessage, state: DeliveryState) -> None:
    message.state = state
    message.next_attempt_at = None


async def _schedule(
    session: AsyncSession,
    registry: Registry,
    message: CallbackMessage,
    *,
    attempt: int,
    run_at: datetime,
) -> None:
    job_id = await _enqueue_attempt(
        session, registry, message.id, message.batch_id, attempt=attempt, run_at=run_at
    )
    message.state = DeliveryState.PENDING
    message.job_id = job_id
    message.next_attempt_at = run_at
    await session.flush()


async def _enqueue_attempt(
    session: AsyncSession,
    registry: Registry,
    message_id: str,
    batch_id: uuid.UUID,
    *,
    attempt: int,
    run_at: datetime,
) -> int:
    # The job does not read batch_id: the worker tags the attempt's log records with it.
    payload = {"message_id": message_id, "attempt": attempt, "batch_id": str(batch_id)}
    return await enqueue(session, registry, DELIVERY_JOB, payload, run_at=run_at)


def _unsent(error: str) -> Outcome:
    return Outcome(at=utcnow(), duration_ms=0, error=error)


def _encode(payload: dict[str, Any]) -> str:
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"callback payload is not JSON-serialisable: {exc}") from exc
