"""客户公海筛选进入任务: filter the pool, import the matching numbers into a call task (§2).

Accepting writes the batch, its job and (with ``Idempotency-Key``) the key in one
transaction, and answers at once. The job copies the matching customers in chunks of
consecutive phones (up to the snapshot bound), each chunk one set-based
``INSERT … SELECT … ON CONFLICT DO NOTHING`` committed together with the batch's progress,
so a crash resumes where the last commit left off, and nothing is added or counted twice.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from highseas.batches import repository as batches_repository
from highseas.batches import service as batches
from highseas.call_tasks.service import task_not_found
from highseas.callbacks import service as callbacks
from highseas.clock import utcnow
from highseas.config import Settings
from highseas.crypto import service as crypto
from highseas.customers import service as customers
from highseas.customers.filters import PoolFilter
from highseas.customers.schemas import PoolFilterIn
from highseas.errors import Conflict
from highseas.ids import parse_uuid
from highseas.imports import repository
from highseas.imports.repository import Chunk
from highseas.jobs import Registry
from highseas.metrics import IMPORT_CHUNK_SECONDS, IMPORT_ROWS, ImportRow
from highseas.models import BatchType, CallbackType, User

IMPORT_JOB = "imports.customer_to_task"
IDEMPOTENCY_TTL = timedelta(hours=24)


def _request_hash(task_id: uuid.UUID, pool_filter: PoolFilter, encryption: bool) -> str:
    """The same request, by whichever transport, hashes the same."""
    normal = pool_filter.to_json()
    normal["components"] = sorted(normal["components"], key=lambda c: json.dumps(c, sort_keys=True))
    canonical = {"task_id": str(task_id), "filter": normal, "encryption": encryption}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _given_hash(task_id: str, given: PoolFilterIn) -> str:
    """The request as it came, by whichever transport (the model both parse into)."""
    canonical = {"task_id": task_id.lower(), "given": given.model_dump(mode="json")}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


async def accept(
    session: AsyncSession,
    registry: Registry,
    *,
    user: User,
    task_id: str,
    given: PoolFilterIn,
    idempotency_key: str | None,
    settings: Settings,
) -> uuid.UUID:
    """Check everything up front (404/403/422), then queue the import; its ``unique_id``.
    With encryption (asked for, and on for the agent) ``phone`` is cipher text and so is the
    batch's download: the batch records the effective flag."""
    given_hash = ""
    if idempotency_key is not None:
        # A retry of an accepted request gets its batch, whatever a check would say now.
        given_hash = _given_hash(task_id, given)
        replayed = await repository.replayed_batch(
            session,
            agent_id=user.agent_id,
            key=idempotency_key,
            given_hash=given_hash,
            live_after=utcnow() - IDEMPOTENCY_TTL,
        )
        if replayed is not None:
            return replayed
    callback = CallbackType.API_CUSTOMER_TO_TASK
    task = parse_uuid(task_id)
    # The task, the callback and the snapshot bound in one query: the 404 comes first, the
    # 422 after the filters'.
    checks = (
        None
        if task is None
        else await repository.accept_checks(
            session, user_id=user.id, task_id=task, agent_id=user.agent_id, type=callback
        )
    )
    if task is None or checks is None:
        raise task_not_found(task_id)
    codec = await crypto.phone_codec(session, user.agent_id, given.encryption, settings)
    pool_filter = await customers.resolve_filter(session, user, given, codec=codec)
    if not checks.callback_configured:
        raise callbacks.not_configured(callback)
    encryption = codec.active
    batch_id = uuid.uuid4()
    if idempotency_key is not None:
        now = utcnow()
        request_hash = _request_hash(task, pool_filter, encryption)
        held = await repository.claim_idempotency_key(
            session,
            agent_id=user.agent_id,
            key=idempotency_key,
            request_hash=request_hash,
            given_hash=given_hash,
            batch_id=batch_id,
            now=now,
            expired_before=now - IDEMPOTENCY_TTL,
        )
        if held is not None:
            if held.request_hash != request_hash:
                raise Conflict(
                    f"Idempotency-Key {idempotency_key!r} 已用于另一个不同的请求（24 小时内）；"
                    "新的请求请使用新的 key",
                    reason="idempotency_conflict",
                )
            return held.batch_id
    request = {"filter": pool_filter.to_json(), "snapshot_last_id": checks.pool_bound}
    return await batches.accept(
        session,
        registry,
        user=user,
        type=BatchType.CUSTOMER_TO_TASK,
        job_kind=IMPORT_JOB,
        request=request,
        encryption=encryption,
        task_id=task,
        batch_id=batch_id,
    )


async def run_import(
    session: AsyncSession,
    registry: Registry,
    batch_id: uuid.UUID,
    *,
    checkpoint: Callable[[], Awaitable[None]],
    download_ttl: timedelta,
    public_url: str,
    server_key: str,
    chunk_rows: int,
) -> None:
    """The import job. ``checkpoint`` commits a chunk with its progress (the job's fenced
    commit), so a rerun after a crash resumes after the last committed chunk."""
    batch = await batches.start(session, batch_id)
    if batch is None or batch.task_id is None:
        return
    pool_filter = PoolFilter.from_json(batch.request["filter"])
    # The batch's changes (running, then progress) wait for the commit's flush: one UPDATE of
    # the batch per transaction instead of one before the next query.
    with session.no_autoflush:
        condition = await customers.pool_condition(session, pool_filter, chunk_rows=chunk_rows)
    progress = dict(
        batch.progress or {"after_phone": "", "done": False, "matched": 0, "imported": 0}
    )
    last_id = int(batch.request["snapshot_last_id"])
    while not progress["done"]:
        started = time.monotonic()
        with session.no_autoflush:
            chunk = await repository.import_chunk(
                session,
                task_id=batch.task_id,
                batch_id=batch.id,
                condition=condition,
                after_phone=progress["after_phone"],
                rows=chunk_rows,
                up_to_id=last_id,
                now=utcnow(),
            )
        progress = {
            "after_phone": chunk.end or progress["after_phone"],
            "done": chunk.end is None,
            "matched": progress["matched"] + chunk.matched,
            "imported": progress["imported"] + chunk.imported,
        }
        batch.progress = progress
        _count_once_committed(session, chunk)
        if not progress["done"]:
            # The last chunk commits with the batch's result, when the job completes: one
            # transaction fewer for an import of one chunk.
            await checkpoint()
        IMPORT_CHUNK_SECONDS.observe(time.monotonic() - started)
    result = {
        "url": batches.new_download_url(
            session, batch.id, ttl=download_ttl, public_url=public_url, server_key=server_key
        ),
        **counts(progress),
    }
    await batches.finish(session, registry, batch, result)


def _count_once_committed(session: AsyncSession, chunk: Chunk) -> None:
    """The chunk's rows in the metrics when its transaction commits: a chunk rolled back
    (a lost lease, a failure) and redone is counted once."""

    def count(_: Session) -> None:
        IMPORT_ROWS.labels(ImportRow.IMPORTED).inc(chunk.imported)
        IMPORT_ROWS.labels(ImportRow.DUPLICATE).inc(chunk.matched - chunk.imported)

    event.listen(session.sync_session, "after_commit", count, once=True)


def counts(progress: dict[str, Any] | None) -> dict[str, int]:
    matched = int((progress or {}).get("matched", 0))
    imported = int((progress or {}).get("imported", 0))
    return {"matched": matched, "imported": imported, "duplicates": matched - imported}


async def fail(session: AsyncSession, registry: Registry, batch_id: uuid.UUID) -> None:
    """The import failed for good: the callback says so, with what was imported until then
    (committed chunks stay in the task)."""
    batch = await batches_repository.get(session, batch_id)
    if batch is not None:
        result = {"reason": "import_failed", **counts(batch.progress)}
        result["message"] = "导入失败（已多次重试）；已导入的号码保留在任务中，可重新提交同一筛选"
        await batches.fail(session, registry, batch_id, result)
