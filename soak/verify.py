"""After the load: wait for every job to finish, then check what was accepted against the
database, the API and the callbacks the receiver got.

The pool recount is done here, in Python, from the rows themselves (not with highseas' own
filter code): a batch's snapshot is the customers its filter matches with an id up to its
bound that committed before it was accepted (their commit timestamps, which the soak's
PostgreSQL tracks). The task must hold all of them, the batch must have added nothing else,
its ``matched`` must be their number, and no customer below the bound may have committed
after the acceptance (ADR 0006).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg

from highseas import download_links
from soak.load import ZONE, Sent
from soak.receiver import Delivery


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not (self.lost or self.doubled or self.failures)


@dataclass(frozen=True)
class Customer:
    id: int
    user_id: str
    phone: str
    operator: int
    sub_user_id: str | None
    created_at: datetime
    components: dict[str, Any]
    committed_at: datetime


@dataclass(frozen=True)
class Batch:
    id: str
    type: str
    user_id: str
    task_id: str | None
    state: str
    request: dict[str, Any]
    result: dict[str, Any]
    accepted_at: datetime


def drain(url: str, timeout: float, keep_alive: Callable[[], None]) -> tuple[bool, str]:
    """Wait until no batch, job or callback is unfinished; ``keep_alive`` restarts workers
    that died meanwhile. False and what is left when ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    left = ""
    while time.monotonic() < deadline:
        keep_alive()
        try:
            with psycopg.connect(url, connect_timeout=5) as db:
                batches, jobs, messages = db.execute(
                    "SELECT (SELECT count(*) FROM batches WHERE state IN ('queued', 'running')),"
                    " (SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')),"
                    " (SELECT count(*) FROM callback_messages WHERE state = 'pending')"
                ).fetchone() or (0, 0, 0)
        except psycopg.OperationalError as exc:
            left = f"database unreachable: {exc}"
        else:
            if batches == jobs == messages == 0:
                return True, ""
            left = f"{batches} batches, {jobs} jobs, {messages} callbacks unfinished"
        time.sleep(0.5)
    return False, left


def job_stats(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as db:
        row = db.execute(
            "SELECT count(*) FILTER (WHERE state = 'succeeded'),"
            " count(*) FILTER (WHERE state = 'failed'),"
            " count(*) FILTER (WHERE attempts > 1),"
            " extract(epoch FROM max(finished_at) - min(created_at))"
            " FROM jobs"
        ).fetchone()
    assert row is not None
    succeeded, failed, retried, span = row
    return {
        "succeeded": succeeded,
        "failed": failed,
        "retried": retried,
        "seconds": float(span or 0.0),
    }


def check(
    url: str,
    sent: list[Sent],
    deliveries: list[Delivery],
    identification: dict[str, dict[str, Any]],
    failed_while_up: list[Sent],
    *,
    server_key: str,
) -> Findings:
    findings = Findings()
    with psycopg.connect(url) as db:
        batches = _batches(db, server_key)
        customers = _customers(db)
        numbers = _task_numbers(db)
        for task_id, phone, times in db.execute(
            "SELECT task_id, phone, count(*) FROM task_numbers"
            " GROUP BY task_id, phone HAVING count(*) > 1"
        ):
            findings.doubled.append(f"task {task_id} holds {phone} {times} times")
        for user_id, phone, times in db.execute(
            "SELECT user_id, phone, count(*) FROM customers"
            " GROUP BY user_id, phone HAVING count(*) > 1"
        ):
            findings.doubled.append(f"the pool of user {user_id} holds {phone} {times} times")
        for job_id, kind, error in db.execute(
            "SELECT id, kind, last_error FROM jobs WHERE state = 'failed'"
        ):
            findings.failures.append(f"job {job_id} ({kind}) failed: {error}")

    accepted = [s for s in sent if s.accepted]
    _check_requests(sent, batches, findings)
    for sent_ in failed_while_up:
        findings.failures.append(
            f"{sent_.kind} request failed while the database was up: {sent_.status} {sent_.reason}"
        )
    _check_batches(batches, accepted, identification, findings)
    _check_callbacks(batches, deliveries, findings)
    _check_pool(batches, customers, accepted, findings)
    _check_tasks(batches, customers, numbers, accepted, findings)
    return findings


def _check_requests(sent: list[Sent], batches: dict[str, Batch], findings: Findings) -> None:
    by_key: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for s in sent:
        if s.accepted:
            assert s.unique_id is not None
            if s.unique_id not in batches:
                findings.lost.append(f"{s.kind} {s.unique_id} was accepted but has no batch")
            if s.key is not None:
                by_key[(s.account.agent, s.key)].add(s.unique_id)
            if s.expect_conflict:
                findings.failures.append(f"Idempotency-Key {s.key} reused for another request: 200")
        elif s.status == 409 and not s.expect_conflict:
            findings.failures.append(f"unexpected 409 {s.reason} for key {s.key}")
        elif s.status is not None and s.status not in (409, 500, 503):
            findings.failures.append(f"{s.kind} answered {s.status} {s.reason}: {s.body}")
    for (agent, key), ids in by_key.items():
        if len(ids) > 1:
            findings.doubled.append(f"Idempotency-Key {key} of {agent} made {len(ids)} batches")


def _check_batches(
    batches: dict[str, Batch],
    accepted: list[Sent],
    identification: dict[str, dict[str, Any]],
    findings: Findings,
) -> None:
    for batch in batches.values():
        if batch.state != "succeeded":
            findings.lost.append(
                f"batch {batch.id} ({batch.type}) ended {batch.state}: {batch.result}"
            )
    for s in accepted:
        assert s.unique_id is not None
        seen = identification.get(s.unique_id)
        stored = batches.get(s.unique_id)
        if seen is None or stored is None:
            continue
        if seen.get("state") != "succeeded" or seen.get("data") != stored.result:
            findings.failures.append(f"identification of {s.unique_id} shows {seen}")


def _check_callbacks(
    batches: dict[str, Batch], deliveries: list[Delivery], findings: Findings
) -> None:
    ids: defaultdict[str, set[str]] = defaultdict(set)
    delivered: set[str] = set()
    for delivery in deliveries:
        unique_id = str(delivery.message.get("unique_id"))
        ids[unique_id].add(delivery.webhook_id)
        if not delivery.signed:
            findings.failures.append(f"callback {delivery.webhook_id}: bad signature")
        if delivery.answered == 200:
            delivered.add(unique_id)
        stored = batches.get(unique_id)
        if stored is None:
            findings.failures.append(f"callback for an unknown batch: {delivery.message}")
            continue
        if (
            delivery.message.get("type") != stored.type
            or delivery.message.get("data") != stored.result
        ):
            findings.failures.append(f"callback {delivery.webhook_id} differs from its batch")
    for batch in batches.values():
        if len(ids[batch.id]) > 1:
            findings.doubled.append(f"batch {batch.id}: {len(ids[batch.id])} callback messages")
        if batch.id not in delivered:
            findings.lost.append(f"batch {batch.id} ({batch.type}): no callback delivered")


def _check_pool(
    batches: dict[str, Batch],
    customers: list[Customer],
    accepted: list[Sent],
    findings: Findings,
) -> None:
    created: defaultdict[str, int] = defaultdict(int)
    for batch in batches.values():
        if batch.type == "api_async_customer" and batch.state == "succeeded":
            created[batch.user_id] += int(batch.result["created"])
    stored: defaultdict[str, int] = defaultdict(int)
    for customer in customers:
        stored[customer.user_id] += 1
    for user_id in set(created) | set(stored):
        if created[user_id] != stored[user_id]:
            findings.failures.append(
                f"user {user_id}: pool imports say {created[user_id]} created, "
                f"the pool has {stored[user_id]}"
            )
    for s in accepted:
        done = batches.get(str(s.unique_id))
        if s.kind != "api_async_customer" or done is None or done.state != "succeeded":
            continue
        rows = s.body["data"]
        result = done.result
        counted = int(result["created"]) + int(result["duplicates"]) + int(result["rejected"])
        invalid = sum(1 for row in rows if row["phone"] == "1234567")
        if counted != len(rows) or int(result["rejected"]) != invalid:
            findings.failures.append(
                f"pool import {done.id}: {len(rows)} rows ({invalid} invalid), result {result}"
            )


def _check_tasks(
    batches: dict[str, Batch],
    customers: list[Customer],
    numbers: list[tuple[str, str, str | None]],
    accepted: list[Sent],
    findings: Findings,
) -> None:
    in_task, of_batch = _check_task_counts(batches, numbers, findings)
    _recount(
        batches,
        customers=customers,
        accepted=accepted,
        in_task=in_task,
        of_batch=of_batch,
        findings=findings,
    )


def _check_task_counts(
    batches: dict[str, Batch], numbers: list[tuple[str, str, str | None]], findings: Findings
) -> tuple[dict[str, set[str]], dict[str | None, set[str]]]:
    """Each batch's counts add up, and a task holds what its batches say they imported."""
    in_task: defaultdict[str, set[str]] = defaultdict(set)
    of_batch: defaultdict[str | None, set[str]] = defaultdict(set)
    for task_id, phone, batch_id in numbers:
        in_task[task_id].add(phone)
        of_batch[batch_id].add(phone)
    imported: defaultdict[str, int] = defaultdict(int)
    for batch in batches.values():
        if batch.type != "api_customer_to_task" or batch.state != "succeeded":
            continue
        assert batch.task_id is not None
        result = batch.result
        imported[batch.task_id] += int(result["imported"])
        if int(result["matched"]) != int(result["imported"]) + int(result["duplicates"]):
            findings.failures.append(f"batch {batch.id}: counts do not add up: {result}")
        if len(of_batch[batch.id]) != int(result["imported"]):
            findings.failures.append(
                f"batch {batch.id}: says {result['imported']} imported, "
                f"the task has {len(of_batch[batch.id])} of its numbers"
            )
    for task_id in set(in_task) | set(imported):
        if imported[task_id] != len(in_task[task_id]):
            findings.failures.append(
                f"task {task_id}: its batches imported {imported[task_id]}, "
                f"it holds {len(in_task[task_id])}"
            )
    return in_task, of_batch


def _recount(
    batches: dict[str, Batch],
    *,
    customers: list[Customer],
    accepted: list[Sent],
    in_task: dict[str, set[str]],
    of_batch: dict[str | None, set[str]],
    findings: Findings,
) -> None:
    """Each accepted import against its filter, evaluated here on the pool's rows."""
    by_user: defaultdict[str, list[Customer]] = defaultdict(list)
    for customer in customers:
        by_user[customer.user_id].append(customer)
    for s in accepted:
        found = batches.get(str(s.unique_id))
        if s.kind != "api_customer_to_task" or found is None or found.state != "succeeded":
            continue
        batch = found
        assert batch.task_id is not None
        bound = int(batch.request["snapshot_last_id"])
        matching = [c for c in by_user[batch.user_id] if c.id <= bound and matches(s.body, c)]
        snapshot = {c.phone for c in matching if c.committed_at < batch.accepted_at}
        late = len(matching) - len(snapshot)
        if late:
            findings.failures.append(
                f"batch {batch.id}: {late} matching customers below its snapshot bound "
                "committed after it was accepted"
            )
        for phone in sorted(snapshot - in_task.get(batch.task_id, set()))[:5]:
            findings.lost.append(f"batch {batch.id}: {phone} matched but is not in the task")
        for phone in sorted(of_batch.get(batch.id, set()) - snapshot)[:5]:
            findings.failures.append(f"batch {batch.id} imported {phone}, outside its snapshot")
        if int(batch.result["matched"]) != len(snapshot):
            findings.failures.append(
                f"batch {batch.id} {s.body}: matched {batch.result['matched']}, "
                f"the recount {len(snapshot)}"
            )


def matches(given: dict[str, Any], customer: Customer) -> bool:  # noqa: PLR0911
    """The contract's filter semantics (§2), for the filter kinds the load sends."""
    for condition in given.get("components", []):
        value = customer.components.get(condition["id"])
        wanted = condition["value"]
        if value is None:
            return False
        if condition.get("op") == "between":
            if not wanted[0] <= float(value) <= wanted[1]:
                return False
        elif isinstance(wanted, list):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    if "phone" in given and customer.phone != given["phone"]:
        return False
    if "operator" in given and customer.operator not in given["operator"]:
        return False
    if "sub_user_id" in given and customer.sub_user_id != given["sub_user_id"]:
        return False
    if "created_at" in given:
        start, end = (
            datetime.strptime(t, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZONE)
            for t in given["created_at"]
        )
        # Whole seconds on the wire: the end second is included to its last instant.
        if not start <= customer.created_at < end + timedelta(seconds=1):
            return False
    return True


def downloads(
    url: str, deliveries: list[Delivery], rng: random.Random, sample: int = 25
) -> list[str]:
    """A sample of the callbacks' download links: each lists exactly the numbers its batch
    added, ascending by pool customer (contract §3)."""
    links = {
        str(d.message["unique_id"]): str(d.message["data"]["url"])
        for d in deliveries
        if d.message.get("type") == "api_customer_to_task" and d.message.get("status") == "success"
    }
    failures = []
    with psycopg.connect(url) as db, httpx.Client(timeout=30) as client:
        for unique_id, link in rng.sample(sorted(links.items()), min(sample, len(links))):
            expected = [
                phone
                for (phone,) in db.execute(
                    "SELECT phone FROM task_numbers WHERE batch_id = %s ORDER BY customer_id",
                    (unique_id,),
                )
            ]
            answer = client.get(link)
            if answer.status_code != 200 or answer.json().get("numbers") != expected:
                failures.append(
                    f"download of {unique_id}: {answer.status_code} {answer.text[:200]}"
                )
    return failures


async def identify(
    apis: list[str], accepted: Iterable[Sent], concurrency: int
) -> dict[str, dict[str, Any]]:
    """``…/identification/{unique_id}`` of every accepted batch, spread over the API processes."""
    found: dict[str, dict[str, Any]] = {}
    gate = asyncio.Semaphore(concurrency)
    clients = [httpx.AsyncClient(base_url=api, timeout=30) for api in apis]

    async def one(index: int, s: Sent) -> None:
        async with gate:
            answer = await clients[index % len(clients)].get(
                f"/agent-api/user/{s.account.user_id}/identification/{s.unique_id}",
                headers=s.account.headers,
            )
        if answer.status_code == 200:
            found[str(s.unique_id)] = answer.json()["data"]

    try:
        unique = {s.unique_id: s for s in accepted}
        await asyncio.gather(*(one(i, s) for i, s in enumerate(unique.values())))
    finally:
        for client in clients:
            await client.aclose()
    return found


def _batches(db: psycopg.Connection[Any], server_key: str) -> dict[str, Batch]:
    """The batches, their results as the service shows them (download keys put in)."""
    rows = db.execute(
        "SELECT id, type, user_id, task_id, state, request, result, accepted_at FROM batches"
    )
    return {
        str(row[0]): Batch(
            id=str(row[0]),
            type=row[1],
            user_id=str(row[2]),
            task_id=None if row[3] is None else str(row[3]),
            state=row[4],
            request=_json(row[5]),
            result=download_links.shown_result(_json(row[6]), server_key) or {},
            accepted_at=row[7],
        )
        for row in rows
    }


def _customers(db: psycopg.Connection[Any]) -> list[Customer]:
    rows = db.execute(
        "SELECT id, user_id, phone, operator, sub_user_id, created_at, components,"
        " pg_xact_commit_timestamp(xmin) FROM customers"
    )
    return [
        Customer(
            id=row[0],
            user_id=str(row[1]),
            phone=row[2],
            operator=row[3],
            sub_user_id=None if row[4] is None else str(row[4]),
            created_at=row[5],
            components=_json(row[6]),
            committed_at=row[7],
        )
        for row in rows
    ]


def _task_numbers(db: psycopg.Connection[Any]) -> list[tuple[str, str, str | None]]:
    rows = db.execute("SELECT task_id, phone, batch_id FROM task_numbers")
    return [(str(t), p, None if b is None else str(b)) for t, p, b in rows]


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str | bytes):
        loaded: dict[str, Any] = json.loads(value)
        return loaded
    return dict(value)
