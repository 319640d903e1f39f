"""Real worker processes: SIGKILL of a holder, two workers sharing jobs, SIGTERM mid-job.

Each job's ``start``/``end`` lines come from the handler in ``worker_process.py``; its database
effect is one Agent row named after the job, which must exist exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from highseas.db import Database
from highseas.jobs import enqueue
from highseas.models import Agent, Job, JobState
from tests.jobs.worker_process import build_registry

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "jobs" / "worker_process.py"

Event = tuple[str, int, int, int]  # (start|end, job id, attempt, pid)


class WorkerProcess:
    def __init__(self, database_url: str, output: Path, options: list[str]) -> None:
        self.output = output
        pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        with output.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, str(SCRIPT), database_url, *options],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": pythonpath},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.process.pid

    def send(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    async def exit_code(self, within: float) -> int:
        deadline = asyncio.get_running_loop().time() + within
        while (code := self.process.poll()) is None:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"worker {self.pid} still running:\n{self.log()}")
            await asyncio.sleep(0.05)
        return code

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


Spawn = Callable[..., WorkerProcess]


@pytest.fixture
def spawn(database_url: str, db: Database, tmp_path: Path) -> Iterator[Spawn]:
    """Start worker processes; all are killed before ``db`` empties the tables (hence ``db``)."""
    started: list[WorkerProcess] = []

    def start(*options: str) -> WorkerProcess:
        output = tmp_path / f"worker-{len(started)}.out"
        worker = WorkerProcess(database_url, output, ["--lease", "2", "--poll", "0.1", *options])
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.kill()


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def enqueue_sleeps(db: Database, log: Path, count: int, seconds: float) -> list[int]:
    registry = build_registry()
    async with db.transaction() as session:
        return [
            await enqueue(session, registry, "tests.sleep", {"log": str(log), "seconds": seconds})
            for _ in range(count)
        ]


def events(log: Path) -> list[Event]:
    if not log.exists():
        return []
    parsed = []
    for line in log.read_text().splitlines():
        event, job_id, attempt, pid = line.split()
        parsed.append((event, int(job_id), int(attempt), int(pid)))
    return parsed


def assert_runs_never_overlap(history: list[Event]) -> None:
    """Per job, every start is closed by its own end before the next start."""
    open_runs: dict[int, tuple[int, int]] = {}
    for event, job_id, attempt, pid in history:
        if event == "start":
            assert job_id not in open_runs, f"job {job_id} started twice at once"
            open_runs[job_id] = (attempt, pid)
        else:
            assert open_runs.pop(job_id) == (attempt, pid)


async def jobs_of(db: Database, ids: list[int]) -> list[Job]:
    async with db.sessions() as session:
        return list((await session.scalars(select(Job).where(Job.id.in_(ids)))).all())


async def agent_names(db: Database) -> list[str]:
    async with db.sessions() as session:
        return sorted((await session.scalars(select(Agent.name))).all())


def all_in(db: Database, ids: list[int], state: JobState) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return all(job.state is state for job in await jobs_of(db, ids))

    return check


def logged(log: Path, event: Event) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return event in events(log)

    return check


async def test_a_killed_workers_job_is_taken_over_after_its_lease(
    db: Database, spawn: Spawn, tmp_path: Path
) -> None:
    log = tmp_path / "jobs.log"
    [job_id] = await enqueue_sleeps(db, log, 1, seconds=1.5)
    first = spawn()
    await eventually(logged(log, ("start", job_id, 1, first.pid)), 10, "the first start")
    first.send(signal.SIGKILL)
    assert await first.exit_code(5) == -signal.SIGKILL

    second = spawn()
    await eventually(all_in(db, [job_id], JobState.SUCCEEDED), 15, "the takeover")

    [job] = await jobs_of(db, [job_id])
    assert job.attempts == 2
    assert job.locked_by is not None and f":{second.pid}:" in job.locked_by
    assert await agent_names(db) == [f"job-{job_id}"]
    assert events(log) == [
        ("start", job_id, 1, first.pid),
        ("start", job_id, 2, second.pid),
        ("end", job_id, 2, second.pid),
    ]


async def test_two_workers_run_each_job_exactly_once(
    db: Database, spawn: Spawn, tmp_path: Path
) -> None:
    log = tmp_path / "jobs.log"
    ready = [tmp_path / "ready-0", tmp_path / "ready-1"]
    workers = [spawn("--concurrency", "2", "--ready-file", str(path)) for path in ready]

    async def both_ready() -> bool:
        return all(path.exists() for path in ready)

    await eventually(both_ready, 10, "both workers")
    ids = await enqueue_sleeps(db, log, 30, seconds=0.05)
    await eventually(all_in(db, ids, JobState.SUCCEEDED), 20, "all jobs")

    assert all(job.attempts == 1 for job in await jobs_of(db, ids))
    assert await agent_names(db) == sorted(f"job-{job_id}" for job_id in ids)
    history = events(log)
    assert_runs_never_overlap(history)
    starts = [(job_id, pid) for event, job_id, _, pid in history if event == "start"]
    assert sorted(job_id for job_id, _ in starts) == ids
    assert {pid for _, pid in starts} == {worker.pid for worker in workers}


async def test_sigterm_lets_the_running_job_finish_within_the_grace(
    db: Database, spawn: Spawn, tmp_path: Path
) -> None:
    log = tmp_path / "jobs.log"
    [job_id] = await enqueue_sleeps(db, log, 1, seconds=1.0)
    worker = spawn("--grace", "5")
    await eventually(logged(log, ("start", job_id, 1, worker.pid)), 10, "the start")
    worker.send(signal.SIGTERM)

    assert await worker.exit_code(6) == 0
    [job] = await jobs_of(db, [job_id])
    assert (job.state, job.attempts) == (JobState.SUCCEEDED, 1)
    assert await agent_names(db) == [f"job-{job_id}"]
    assert events(log) == [("start", job_id, 1, worker.pid), ("end", job_id, 1, worker.pid)]


async def test_sigterm_releases_a_job_that_outlives_the_grace(
    db: Database, spawn: Spawn, tmp_path: Path
) -> None:
    log = tmp_path / "jobs.log"
    [job_id] = await enqueue_sleeps(db, log, 1, seconds=30)
    first = spawn("--grace", "0.5")
    await eventually(logged(log, ("start", job_id, 1, first.pid)), 10, "the start")
    first.send(signal.SIGTERM)

    assert await first.exit_code(5) == 0
    [job] = await jobs_of(db, [job_id])
    assert (job.state, job.attempts, job.locked_by) == (JobState.QUEUED, 0, None)
    assert await agent_names(db) == []

    # A later worker (here with the sleep cut short) runs the released job once.
    second = spawn("--max-sleep", "0.1")
    await eventually(all_in(db, [job_id], JobState.SUCCEEDED), 10, "the rerun")
    [job] = await jobs_of(db, [job_id])
    assert job.attempts == 1
    assert await agent_names(db) == [f"job-{job_id}"]
    history = events(log)
    assert_runs_never_overlap(history)
    assert history == [
        ("start", job_id, 1, first.pid),
        ("end", job_id, 1, first.pid),
        ("start", job_id, 1, second.pid),
        ("end", job_id, 1, second.pid),
    ]
