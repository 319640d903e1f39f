"""客户公海筛选进入任务 under stress: two batches importing into one task at the same time, a
worker killed with SIGKILL in the middle of an import, an import that fails for good, and a
download link that has expired (contract §2–§4).

Batches are accepted through the HTTP API (the in-process app); their import jobs run on real
``Worker``s, in-process or as ``highseas worker`` processes; callbacks go to a real HTTP
receiver. Every count is checked against what the database holds.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from highseas.background import job_registry
from highseas.clock import utcnow
from highseas.config import Settings
from highseas.customers import filters
from highseas.db import Database, to_async_url
from highseas.imports import repository as imports_repository
from highseas.imports.repository import Chunk
from highseas.jobs import Queue, Worker
from highseas.jobs.queue import claim
from highseas.models import Batch, BatchState, DownloadKey, Job, JobState, TaskNumber
from tests.fixtures.assertions import assert_error
from tests.fixtures.factories import run_jobs
from tests.fixtures.receiver import Received, Receiver
from tests.imports.scenario import Scenario, callbacks_of, finish, make_scenario

ROOT = Path(__file__).resolve().parents[2]
TESTSERVER = "http://testserver"

# Helpers


def pool_rows(count: int) -> list[dict[str, Any]]:
    """``count`` customers with distinct phones, a stated carrier cycling through 电信, 联通,
    移动, and an age (年龄) cycling through 0–99: filters on either select a known share."""
    return [
        {"phone": f"13{i % 10}{i:08d}", "operator": 1 + i % 3, "年龄": i % 100}
        for i in range(count)
    ]


AGE_20_TO_69 = (20, 69)
UNICOM_OR_TELECOM = [1, 2]


def age_filter(scenario: Scenario) -> dict[str, Any]:
    low, high = AGE_20_TO_69
    return {
        "components": [{"id": scenario.components["年龄"], "op": "between", "value": [low, high]}]
    }


def carrier_filter() -> dict[str, Any]:
    return {"operator": UNICOM_OR_TELECOM}


def by_age(rows: list[dict[str, Any]]) -> list[str]:
    low, high = AGE_20_TO_69
    return [row["phone"] for row in rows if low <= row["年龄"] <= high]


def by_carrier(rows: list[dict[str, Any]]) -> list[str]:
    return [row["phone"] for row in rows if row["operator"] in UNICOM_OR_TELECOM]


async def accept(client: httpx.AsyncClient, scenario: Scenario, body: dict[str, Any]) -> str:
    response = await client.post(scenario.url(), json=body, headers=scenario.agent.headers)
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "号码导入任务信息请在回调中查收"
    unique_id: str = response.json()["data"]["unique_id"]
    return unique_id


async def download(client: httpx.AsyncClient, url: str) -> list[str]:
    assert url.startswith(f"{TESTSERVER}/agent-api/download-number?key="), url
    response = await client.get(url.removeprefix(TESTSERVER))
    assert response.status_code == 200, response.text
    numbers: list[str] = response.json()["numbers"]
    return numbers


async def identification(
    client: httpx.AsyncClient, scenario: Scenario, unique_id: str
) -> dict[str, Any]:
    response = await client.get(
        f"{scenario.base}/identification/{unique_id}", headers=scenario.agent.headers
    )
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()["data"]
    return view


async def numbers_endpoint(client: httpx.AsyncClient, scenario: Scenario) -> list[dict[str, Any]]:
    """Every number of the task, through the paginated numbers endpoint."""
    url = f"{scenario.base}/task/{scenario.task_id}/number"
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        response = await client.get(
            url, params={"page": page, "per_page": 1000}, headers=scenario.agent.headers
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        found += answer["data"]
        if page >= answer["meta"]["last_page"]:
            assert len(found) == answer["meta"]["total"]
            return found
        page += 1


async def task_numbers(db: Database, task_id: str) -> list[TaskNumber]:
    """The task's rows in ``task_numbers``, by pool customer."""
    async with db.sessions() as session:
        query = (
            select(TaskNumber)
            .where(TaskNumber.task_id == uuid.UUID(task_id))
            .order_by(TaskNumber.customer_id)
        )
        return list((await session.scalars(query)).all())


async def batch_row(db: Database, unique_id: str) -> Batch:
    async with db.sessions() as session:
        batch = await session.get(Batch, uuid.UUID(unique_id))
        assert batch is not None
        return batch


async def job_of(db: Database, unique_id: str) -> Job:
    async with db.sessions() as session:
        jobs = (await session.scalars(select(Job).where(Job.queue == Queue.IMPORTS))).all()
    [job] = [job for job in jobs if job.payload["batch_id"] == unique_id]
    return job


def webhook_ids(received: list[Received]) -> set[str]:
    return {r.headers["webhook-id"] for r in received}


def assert_signed(secret: str, received: Received) -> None:
    """Standard Webhooks: v1 = base64 HMAC-SHA256(key, "id.timestamp.body")."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}."
    digest = hmac.new(key, signed.encode() + received.body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    assert expected in received.headers["webhook-signature"].split(" ")


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float, what: str, *, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(interval)


# 1. Two batches into one task at the same time


@dataclass
class Lockstep:
    """Wraps ``import_chunk`` so that two batches' chunks interleave, deterministically.

    Chunk k (k >= 1) of one batch starts only once the other batch has reached its chunk k (or
    finished), so both run chunk k at the same time: on PostgreSQL two concurrent INSERTs over
    overlapping phone ranges (the phones both select collide on the task's unique key), on
    SQLite one after the other. Chunk 0 does not wait: the job's first transaction already
    holds SQLite's write lock from marking the batch running. Between chunks a job holds no
    transaction (each chunk ends in a commit), so waiting here blocks nobody. The calls are
    recorded in order.
    """

    real: Callable[..., Awaitable[Chunk]]
    batches: tuple[uuid.UUID, uuid.UUID]
    reached: dict[uuid.UUID, int] = field(default_factory=dict)
    finished: set[uuid.UUID] = field(default_factory=set)
    order: list[tuple[uuid.UUID, int, str]] = field(default_factory=list)
    waits_timed_out: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __call__(self, session: AsyncSession, **kwargs: Any) -> Chunk:
        batch_id: uuid.UUID = kwargs["batch_id"]
        other = self.batches[1] if batch_id == self.batches[0] else self.batches[0]
        chunk = self.reached.get(batch_id, -1) + 1
        async with self.changed:
            self.reached[batch_id] = chunk
            self.changed.notify_all()
            if chunk >= 1:
                try:
                    async with asyncio.timeout(10):
                        await self.changed.wait_for(
                            lambda: self.reached.get(other, -1) >= chunk or other in self.finished
                        )
                except TimeoutError:
                    self.waits_timed_out += 1
        self.order.append((batch_id, chunk, kwargs["after_phone"]))
        done = await self.real(session, **kwargs)
        if done.end is None:
            async with self.changed:
                self.finished.add(batch_id)
                self.changed.notify_all()
        return done

    def chunks(self, batch_id: uuid.UUID) -> int:
        return sum(1 for called, _, _ in self.order if called == batch_id)

    def switches(self) -> int:
        """How often consecutive chunk calls changed batch."""
        labels = [batch_id for batch_id, _, _ in self.order]
        return sum(1 for a, b in itertools.pairwise(labels) if a != b)


async def test_concurrent_batches_into_one_task_never_add_a_number_twice(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = pool_rows(3000)
    scenario = await make_scenario(client, db, receiver, tmp_path, rows)
    first = await accept(client, scenario, age_filter(scenario))
    second = await accept(client, scenario, carrier_filter())
    expected = {first: set(by_age(rows)), second: set(by_carrier(rows))}
    union = expected[first] | expected[second]
    overlap = expected[first] & expected[second]
    assert len(overlap) > 500 and len(union) < len(rows)  # the filters overlap, and filter

    lockstep = Lockstep(imports_repository.import_chunk, (uuid.UUID(first), uuid.UUID(second)))
    monkeypatch.setattr(imports_repository, "import_chunk", lockstep)
    small_chunks = settings.model_copy(update={"import_chunk_rows": 100})
    registry = job_registry(small_chunks)
    workers = [
        Worker.from_settings(db, small_chunks, registry=registry, queues=[Queue.IMPORTS])
        for _ in range(2)
    ]
    ran = await asyncio.gather(*(worker.run_one(Queue.IMPORTS) for worker in workers))
    assert ran == [True, True]
    # Both ran at once, chunk by chunk, while both had chunks left.
    assert lockstep.waits_timed_out == 0
    both = min(lockstep.chunks(uuid.UUID(first)), lockstep.chunks(uuid.UUID(second)))
    assert both >= 6 and lockstep.switches() >= both
    for unique_id in (first, second):
        job = await job_of(db, unique_id)
        assert (job.state, job.attempts) == (JobState.SUCCEEDED, 1), job.last_error
    await run_jobs(db, settings, Queue.CALLBACKS)

    # The task: every phone once, each from a batch whose filter selects it.
    stored = await task_numbers(db, scenario.task_id)
    phones = [number.phone for number in stored]
    assert len(phones) == len(set(phones)) == len(union)
    assert set(phones) == union
    added_by: dict[str, list[str]] = {first: [], second: []}
    for number in stored:
        added_by[str(number.batch_id)].append(number.phone)
    for unique_id in (first, second):
        assert set(added_by[unique_id]) <= expected[unique_id]
    # The numbers endpoint agrees with the table.
    listed = await numbers_endpoint(client, scenario)
    assert sorted((n["phone"], n["unique_id"]) for n in listed) == sorted(
        (n.phone, str(n.batch_id)) for n in stored
    )

    results = {c["unique_id"]: c for c in callbacks_of(receiver)}
    assert set(results) == {first, second} and len(receiver.received) == 2
    for unique_id in (first, second):
        callback = results[unique_id]
        assert callback["status"] == "success" and callback["task_id"] == scenario.task_id
        data = callback["data"]
        assert data["matched"] == len(expected[unique_id])
        assert data["imported"] == len(added_by[unique_id])
        assert data["duplicates"] == data["matched"] - data["imported"]
        # The download lists exactly this batch's numbers, by pool customer (contract §3).
        assert await download(client, data["url"]) == added_by[unique_id]
        view = await identification(client, scenario, unique_id)
        assert view["state"] == "succeeded" and view["data"] == data
    imported = [results[u]["data"]["imported"] for u in (first, second)]
    assert sum(imported) == len(union)
    # Each overlapping phone went to exactly one of the two; the other counted it a duplicate.
    duplicates = [results[u]["data"]["duplicates"] for u in (first, second)]
    assert sum(duplicates) == len(overlap)


# 1b. A filter matching much of the pool, and one matching little


async def test_a_wide_component_filter_walks_the_pool_and_a_narrow_one_seeks(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunks of 100: half the pool (1,000 matches) would re-seek its values in each of ten
    chunks, so the import walks the pool by phone and probes each customer's values; a 1%
    filter seeks. Both import exactly what their filter selects."""
    rows = pool_rows(2000)
    scenario = await make_scenario(client, db, receiver, tmp_path, rows)
    age = scenario.components["年龄"]
    narrow = {"components": [{"id": age, "value": 7}]}
    walked: list[bool] = []
    real_condition = filters.condition

    def spy(*args: Any, walk_pool: bool = False) -> Any:
        walked.append(walk_pool)
        return real_condition(*args, walk_pool=walk_pool)

    monkeypatch.setattr(filters, "condition", spy)
    wide_id = await accept(client, scenario, age_filter(scenario))
    small_chunks = settings.model_copy(update={"import_chunk_rows": 100})
    await run_jobs(db, small_chunks)
    narrow_id = await accept(client, scenario, narrow)
    await run_jobs(db, small_chunks)
    await run_jobs(db, settings, Queue.CALLBACKS)
    assert walked[-2:] == [True, False]

    results = {c["unique_id"]: c["data"] for c in callbacks_of(receiver)}
    expected = {
        wide_id: by_age(rows),
        narrow_id: [row["phone"] for row in rows if row["年龄"] == 7],
    }
    for unique_id, phones in expected.items():
        data = results[unique_id]
        assert (data["matched"], data["imported"]) == (len(phones), len(phones))
        assert await download(client, data["url"]) == phones  # by pool customer


# 2. A worker killed with SIGKILL in the middle of an import


class WorkerProcess:
    """``python -m highseas worker`` with its output in a file."""

    def __init__(self, env: dict[str, str], output: Path) -> None:
        self.output = output
        with output.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "highseas", "worker"],
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.process.pid

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    async def exit_code(self, within: float) -> int:
        deadline = time.monotonic() + within
        while (code := self.process.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.pid} still running:\n{self.log()}")
            await asyncio.sleep(0.05)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


Spawn = Callable[[], WorkerProcess]


def worker_env(settings: Settings, chunk_rows: int) -> dict[str, str]:
    """A worker on the test's database and data directory (the callback secret is sealed with
    the key kept there), posting to the local receiver, quick to take over a killed one's job."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("HIGHSEAS_")}
    return {
        **inherited,
        "HIGHSEAS_DATABASE_URL": settings.database_url,
        "HIGHSEAS_DATA_DIR": str(settings.data_dir),
        "HIGHSEAS_PUBLIC_URL": TESTSERVER,
        "HIGHSEAS_IMPORT_CHUNK_ROWS": str(chunk_rows),
        "HIGHSEAS_JOB_LEASE_SECONDS": "2",
        "HIGHSEAS_JOB_POLL_SECONDS": "0.1",
        "HIGHSEAS_JOB_SHUTDOWN_GRACE_SECONDS": "5",
        "HIGHSEAS_CALLBACK_ALLOW_PRIVATE": "true",
        "HIGHSEAS_CALLBACK_TIMEOUT": "5",
        "HIGHSEAS_CALLBACK_RETRY_SCHEDULE": "1,1,1",
    }


KILL_CHUNK_ROWS = 250
TOO_FAST = "the import finished before it could be interrupted: make the pool bigger"


@pytest.fixture
def spawn(settings: Settings, db: Database, tmp_path: Path) -> Iterator[Spawn]:
    """Start worker processes; all are killed before ``db`` empties the tables (hence ``db``)."""
    started: list[WorkerProcess] = []
    env = worker_env(settings, KILL_CHUNK_ROWS)

    def start() -> WorkerProcess:
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.out")
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.kill()


@pytest.fixture
async def reader(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose reads take no lock. highseas begins every SQLite transaction with
    BEGIN IMMEDIATE, so its own reads queue for the write lock behind the import's chunks;
    a plain WAL reader never waits."""
    engine = create_async_engine(to_async_url(database_url))
    try:
        yield engine
    finally:
        await engine.dispose()


async def count_of_batch(session: AsyncSession, unique_id: str) -> int:
    query = select(func.count()).where(TaskNumber.batch_id == uuid.UUID(unique_id))
    return int((await session.execute(query)).scalar_one())


@pytest.mark.slow
async def test_an_import_survives_sigkill_of_its_worker(
    client: httpx.AsyncClient,
    db: Database,
    receiver: Receiver,
    spawn: Spawn,
    reader: AsyncEngine,
    tmp_path: Path,
) -> None:
    rows = pool_rows(20_000)
    scenario = await make_scenario(client, db, receiver, tmp_path, rows)
    unique_id = await accept(client, scenario, carrier_filter())
    expected = by_carrier(rows)

    first = spawn()
    # Wait for a committed chunk that found numbers, then kill -9 at once: the worker dies
    # with the next chunk's transaction open (or about to be).
    seen: dict[str, int] = {}

    async def mid_import() -> bool:
        assert first.process.poll() is None, first.log()
        async with AsyncSession(reader) as session:
            batch = await session.get(Batch, uuid.UUID(unique_id))
        assert batch is not None
        assert batch.state is not BatchState.SUCCEEDED, TOO_FAST
        seen.update(batch.progress or {})
        return seen.get("imported", 0) > 0

    await eventually(mid_import, 60, "the first chunk", interval=0.005)
    first.process.send_signal(signal.SIGKILL)
    assert await first.exit_code(10) == -signal.SIGKILL

    # What was committed survived, consistent with the task; the rest was not done.
    async with db.sessions() as session:
        batch = await session.get(Batch, uuid.UUID(unique_id))
        assert batch is not None and batch.state is BatchState.RUNNING, TOO_FAST
        progress = dict(batch.progress or {})
        assert seen["after_phone"] <= progress["after_phone"] and not progress["done"], TOO_FAST
        assert progress["matched"] == progress["imported"] > 0
        assert await count_of_batch(session, unique_id) == progress["imported"]
    job = await job_of(db, unique_id)
    assert (job.state, job.attempts) == (JobState.RUNNING, 1)
    assert job.locked_by is not None and f":{first.pid}:" in job.locked_by
    survivors = {n.id: n.phone for n in await task_numbers(db, scenario.task_id)}
    assert receiver.received == []

    second = spawn()

    async def called_back() -> bool:
        assert second.process.poll() is None, second.log()
        batch = await batch_row(db, unique_id)
        return batch.state is BatchState.SUCCEEDED and len(receiver.received) >= 1

    await eventually(called_back, 60, "the takeover, the rest of the import and its callback")
    second.process.send_signal(signal.SIGTERM)
    assert await second.exit_code(20) == 0, second.log()

    job = await job_of(db, unique_id)
    assert (job.state, job.attempts) == (JobState.SUCCEEDED, 2)
    assert job.locked_by is not None and f":{second.pid}:" in job.locked_by
    # One message, however often it was sent, signed; counts exact: the rerun resumed after
    # the last committed chunk, it did neither recount nor re-add the first worker's numbers.
    assert len(webhook_ids(receiver.received)) == 1
    assert all(r.body == receiver.received[0].body for r in receiver.received)
    assert_signed(scenario.secret, receiver.received[0])
    [callback] = {json.dumps(c, sort_keys=True): c for c in callbacks_of(receiver)}.values()
    assert callback["unique_id"] == unique_id and callback["status"] == "success"
    data = callback["data"]
    assert (data["matched"], data["imported"], data["duplicates"]) == (
        len(expected),
        len(expected),
        0,
    )
    stored = await task_numbers(db, scenario.task_id)
    assert [n.phone for n in stored] == expected  # each once, in pool order
    assert {str(n.batch_id) for n in stored} == {unique_id}
    assert {n.id: n.phone for n in stored if n.id in survivors} == survivors
    assert await download(client, data["url"]) == expected  # by pool customer
    view = await identification(client, scenario, unique_id)
    assert view["state"] == "succeeded" and view["data"] == data
    assert view["delivery"]["state"] == "delivered"
    assert len(view["delivery"]["attempts"]) == len(receiver.received)


# 3. An import that fails for good


async def test_an_import_that_fails_for_good_says_so(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = pool_rows(900)
    scenario = await make_scenario(client, db, receiver, tmp_path, rows)
    unique_id = await accept(client, scenario, carrier_filter())
    # No input makes an accepted import fail (a deleted component matches nobody, a task
    # cannot be deleted): the database breaks down after the first chunk that found numbers.
    real = imports_repository.import_chunk
    done: list[Chunk] = []

    async def breaks_down(session: AsyncSession, **kwargs: Any) -> Chunk:
        if any(chunk.imported for chunk in done):
            raise RuntimeError("database on fire")
        done.append(await real(session, **kwargs))
        return done[-1]

    monkeypatch.setattr(imports_repository, "import_chunk", breaks_down)
    # Its last attempt (the job keeps the max_attempts it was queued with).
    async with db.transaction() as session:
        await session.execute(update(Job).where(Job.queue == Queue.IMPORTS).values(max_attempts=1))
    small_chunks = settings.model_copy(update={"import_chunk_rows": 100})
    worker = Worker.from_settings(db, small_chunks, registry=job_registry(small_chunks))
    assert await worker.run_one(Queue.IMPORTS)
    job = await job_of(db, unique_id)
    assert (job.state, job.attempts) == (JobState.FAILED, 1)
    assert job.last_error == "RuntimeError: database on fire"
    await run_jobs(db, settings, Queue.CALLBACKS)

    matched = sum(chunk.matched for chunk in done)
    imported = sum(chunk.imported for chunk in done)
    assert 0 < imported < len(by_carrier(rows))
    [callback] = callbacks_of(receiver)
    assert callback["unique_id"] == unique_id and callback["task_id"] == scenario.task_id
    assert callback["status"] == "failed"
    data = callback["data"]
    assert data["reason"] == "import_failed" and data["message"]
    assert (data["matched"], data["imported"], data["duplicates"]) == (matched, imported, 0)
    assert "url" not in data
    # What the committed chunks imported stays in the task.
    stored = await task_numbers(db, scenario.task_id)
    assert len(stored) == imported and {str(n.batch_id) for n in stored} == {unique_id}
    assert sorted(n.phone for n in stored) == sorted(by_carrier(rows))[:imported]

    view = await identification(client, scenario, unique_id)
    assert view["state"] == "failed" and view["status"] == "failed"
    assert view["data"] == data and view["finished_at"]
    assert view["delivery"]["state"] == "delivered"
    listed = await client.get(
        f"{scenario.base}/batches", params={"state": "failed"}, headers=scenario.agent.headers
    )
    assert [b["unique_id"] for b in listed.json()["data"]] == [unique_id]


# 4. An expired download key, and the redelivery that replaces it


async def test_redelivery_replaces_an_expired_download_key(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    rows = pool_rows(300)
    scenario = await make_scenario(client, db, receiver, tmp_path, rows)
    unique_id = await accept(client, scenario, age_filter(scenario))
    await finish(db, settings)
    [callback] = callbacks_of(receiver)
    old_url = callback["data"]["url"]
    numbers = await download(client, old_url)
    assert numbers == by_age(rows)  # by pool customer
    checked = await client.head(old_url.removeprefix(TESTSERVER))
    assert checked.status_code == 200 and checked.content == b""
    assert checked.headers["content-type"] == "application/json"
    redeliver = f"{scenario.base}/identification/{unique_id}/redeliver"

    # While the key is live a redelivery sends the same message, link and all.
    again = await client.post(redeliver, headers=scenario.agent.headers)
    assert again.status_code == 200, again.text
    assert again.json()["message"] == "已重新发送"
    await run_jobs(db, settings, Queue.CALLBACKS)
    assert receiver.received[1].body == receiver.received[0].body

    async with db.transaction() as session:
        await session.execute(
            update(DownloadKey)
            .where(DownloadKey.batch_id == uuid.UUID(unique_id))
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    assert_error(await client.get(old_url.removeprefix(TESTSERVER)), 410, "download_key_expired")
    assert (await client.head(old_url.removeprefix(TESTSERVER))).status_code == 410

    fresh = await client.post(redeliver, headers=scenario.agent.headers)
    assert fresh.status_code == 200, fresh.text
    await run_jobs(db, settings, Queue.CALLBACKS)
    assert len(receiver.received) == 3
    assert len(webhook_ids(receiver.received)) == 1  # one message, delivered three times
    for received in receiver.received:
        assert_signed(scenario.secret, received)
    third = callbacks_of(receiver)[2]
    new_url = third["data"]["url"]
    assert new_url != old_url
    assert {**third, "data": {**third["data"], "url": old_url}} == callback
    assert await download(client, new_url) == numbers
    assert_error(await client.get(old_url.removeprefix(TESTSERVER)), 410, "download_key_expired")
    view = await identification(client, scenario, unique_id)
    assert view["data"]["url"] == new_url
    assert [a["status_code"] for a in view["delivery"]["attempts"]] == [200, 200, 200]

    # A batch that has not finished has nothing to redeliver yet.
    pending = await accept(client, scenario, carrier_filter())
    refused = await client.post(
        f"{scenario.base}/identification/{pending}/redeliver", headers=scenario.agent.headers
    )
    assert_error(refused, 409, "batch_not_finished")
    assert len(receiver.received) == 3


# 5. A job whose holders all died


async def test_an_import_whose_last_holder_died_fails_with_a_callback(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    scenario = await make_scenario(client, db, receiver, tmp_path, pool_rows(30))
    unique_id = await accept(client, scenario, carrier_filter())
    registry = job_registry(settings)
    async with db.transaction() as session:
        await session.execute(update(Job).where(Job.queue == Queue.IMPORTS).values(max_attempts=1))
    # A worker claims the import on its last attempt and dies (it never renews the lease).
    async with db.transaction() as session:
        claimed = await claim(
            session,
            queue=Queue.IMPORTS,
            kinds=registry.kinds(Queue.IMPORTS),
            worker_id="crashed",
            lease_seconds=0.05,
        )
    assert claimed is not None and claimed.job.payload["batch_id"] == unique_id
    await asyncio.sleep(0.1)

    worker = Worker.from_settings(db, settings, registry=registry)
    assert not await worker.run_one(Queue.IMPORTS)  # nothing left to run: the job failed
    job = await job_of(db, unique_id)
    assert (job.state, job.attempts) == (JobState.FAILED, 1)
    assert job.last_error is not None and job.last_error.startswith("lease expired")
    await run_jobs(db, settings, Queue.CALLBACKS)

    # The contract: once a unique_id is returned, its callback happens; here, a failure.
    view = await identification(client, scenario, unique_id)
    assert view["state"] == "failed", view
    [callback] = callbacks_of(receiver)
    assert callback["status"] == "failed" and callback["data"]["reason"] == "import_failed"
