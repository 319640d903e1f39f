"""Batches: accepted asynchronous work, its state, and its result (contract §4).

A batch row and its job are written in the caller's transaction: once a ``unique_id`` is
returned, the work exists (ADR 0002). The job calls ``start`` and then ``finish``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from highseas import download_links
from highseas.batches import repository
from highseas.batches.schemas import BatchQuery, BatchRead
from highseas.callbacks import service as callbacks
from highseas.callbacks.schemas import DeliveryRead
from highseas.clock import utcnow
from highseas.config import Settings
from highseas.crypto import service as crypto
from highseas.crypto.codec import Codec
from highseas.envelope import PageParams
from highseas.errors import Conflict, Gone, NotFound
from highseas.ids import parse_uuid
from highseas.jobs import Registry, enqueue
from highseas.models import Batch, BatchState, BatchType, CallbackType, User


async def accept(
    session: AsyncSession,
    registry: Registry,
    *,
    user: User,
    type: BatchType,
    job_kind: str,
    request: dict[str, Any],
    encryption: bool = False,
    task_id: uuid.UUID | None = None,
    batch_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Write the batch and its job; the batch's id (its ``unique_id``)."""
    batch_id = batch_id or uuid.uuid4()
    await repository.add(
        session,
        id=batch_id,
        agent_id=user.agent_id,
        user_id=user.id,
        type=type,
        task_id=task_id,
        request=request,
        encryption=encryption,
    )
    await enqueue(session, registry, job_kind, {"batch_id": str(batch_id)})
    return batch_id


async def start(session: AsyncSession, batch_id: uuid.UUID) -> Batch | None:
    """The batch to work on, marked running (written with the job's next flush, together
    with its progress or result); None when it is already finished (a job that ran to
    completion but lost its lease before it could say so)."""
    batch = await repository.get(session, batch_id)
    if batch is None or batch.state in (BatchState.SUCCEEDED, BatchState.FAILED):
        return None
    batch.state = BatchState.RUNNING
    return batch


async def finish(
    session: AsyncSession,
    registry: Registry,
    batch: Batch,
    result: dict[str, Any],
    *,
    succeeded: bool = True,
) -> None:
    """Record the outcome and queue its callback, in the job's transaction: the batch is
    finished and its message exists, or neither."""
    batch.state = BatchState.SUCCEEDED if succeeded else BatchState.FAILED
    batch.result = result
    batch.finished_at = utcnow()
    await session.flush()
    callback_type = CallbackType(batch.type.value)
    # customer_to_task requires its URL when accepted; a URL deleted since is a recorded
    # delivery failure. The pool-import callback is optional.
    if batch.type is BatchType.ASYNC_CUSTOMER and not await callbacks.is_configured(
        session, batch.agent_id, callback_type
    ):
        return
    await callbacks.emit(
        session,
        agent_id=batch.agent_id,
        type=callback_type,
        batch_id=batch.id,
        payload=callback_message(batch),
        registry=registry,
    )


async def fail(
    session: AsyncSession, registry: Registry, batch_id: uuid.UUID, result: dict[str, Any]
) -> None:
    """The job of the batch failed for good: say so (state, result, callback)."""
    batch = await repository.get(session, batch_id)
    if batch is not None and batch.state not in (BatchState.SUCCEEDED, BatchState.FAILED):
        await finish(session, registry, batch, result, succeeded=False)


def callback_message(batch: Batch) -> dict[str, Any]:
    """The callback body of a finished batch (contract §3, §5)."""
    message: dict[str, Any] = {
        "mode": "batch",
        "type": batch.type.value,
        "unique_id": str(batch.id),
        "user_id": str(batch.user_id),
    }
    if batch.task_id is not None:
        message["task_id"] = str(batch.task_id)
    message["status"] = "success" if batch.state is BatchState.SUCCEEDED else "failed"
    message["data"] = batch.result or {}
    return message


async def read(session: AsyncSession, batch: Batch, server_key: str) -> BatchRead:
    return (await read_many(session, [batch], server_key))[0]


async def read_many(
    session: AsyncSession, batches: Sequence[Batch], server_key: str
) -> list[BatchRead]:
    """Batches as the API shows them, with their deliveries read in two queries in all, and
    their download links with the keys in (``server_key``)."""
    deliveries = await callbacks.deliveries_of(session, [b.id for b in batches])
    return [_read(batch, deliveries.get(batch.id), server_key) for batch in batches]


def _read(batch: Batch, delivery: DeliveryRead | None, server_key: str) -> BatchRead:
    finished = batch.state in (BatchState.SUCCEEDED, BatchState.FAILED)
    return BatchRead(
        type=batch.type,
        unique_id=batch.id,
        user_id=batch.user_id,
        task_id=batch.task_id,
        status=("success" if batch.state is BatchState.SUCCEEDED else "failed")
        if finished
        else None,
        data=download_links.shown_result(batch.result, server_key),
        state=batch.state,
        accepted_at=batch.accepted_at,
        finished_at=batch.finished_at,
        delivery=delivery,
    )


async def owned(session: AsyncSession, user: User, unique_id: str) -> Batch:
    parsed = parse_uuid(unique_id)
    batch = None if parsed is None else await repository.of_user(session, user.id, parsed)
    if batch is None:
        raise NotFound(f"批次 {unique_id} 不存在", reason="batch_not_found")
    return batch


async def list_batches(
    session: AsyncSession, user: User, filters: BatchQuery
) -> tuple[list[Batch], int, PageParams]:
    params = PageParams(page=filters.page, per_page=filters.per_page)
    batches, total = await repository.page_of_user(
        session, user.id, filters, offset=params.offset, limit=params.per_page
    )
    return batches, total, params


def new_download_url(
    session: AsyncSession, batch_id: uuid.UUID, *, ttl: timedelta, public_url: str, server_key: str
) -> str:
    """A fresh download link for the batch, as stored: its key is never stored, only its
    hash; ``download_links.shown`` puts the key in where the link is shown."""
    url, key_hash = download_links.new_link(public_url, server_key)
    repository.add_download_key(
        session, key_hash=key_hash, batch_id=batch_id, expires_at=utcnow() + ttl
    )
    return url


@dataclass(frozen=True)
class Download:
    batch_id: uuid.UUID
    # Cipher text per number for a batch accepted with encryption (contract §3, §6).
    codec: Codec


async def download(session: AsyncSession, key: str, settings: Settings) -> Download:
    """What a download key opens: 404 unknown, 410 expired."""
    found = await repository.download_key(session, download_links.hash_key(key))
    if found is None:
        raise NotFound("下载链接无效：key 不存在", reason="download_key_not_found")
    if found.expires_at <= utcnow():
        raise Gone(
            "下载链接已过期；可通过 identification/{unique_id}/redeliver 重新获取新链接",
            reason="download_key_expired",
        )
    batch = await repository.get(session, found.batch_id)
    assert batch is not None  # the key goes with its batch (ON DELETE CASCADE)
    return Download(batch.id, await crypto.batch_codec(session, batch, settings))


async def redeliver(
    session: AsyncSession, registry: Registry, batch: Batch, settings: Settings
) -> None:
    """Send the finished batch's message again. A download link that has expired would be
    useless to the receiver: the message then carries a fresh one (contract §3)."""
    if batch.state not in (BatchState.SUCCEEDED, BatchState.FAILED):
        raise Conflict(
            f"批次 {batch.id} 尚未完成（{batch.state}），完成后会自动回调",
            reason="batch_not_finished",
        )
    payload = None
    url = (batch.result or {}).get("url")
    if url is not None and not await repository.has_live_download_key(session, batch.id, utcnow()):
        ttl = timedelta(seconds=settings.download_ttl)
        fresh = new_download_url(
            session,
            batch.id,
            ttl=ttl,
            public_url=settings.base_url,
            server_key=settings.resolved_secret_key(),
        )
        batch.result = {**(batch.result or {}), "url": fresh}
        await session.flush()
        payload = callback_message(batch)
    await callbacks.redeliver(session, batch_id=batch.id, registry=registry, payload=payload)
