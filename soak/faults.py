"""The fault injector: SIGKILL a random worker every few seconds and start a new one in its
place; once, restart PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from soak.fleet import Fleet
from soak.postgres import Cluster


@dataclass
class Faults:
    kills: int = 0
    skipped: int = 0  # ticks with no working worker to kill
    # Workers that exited by themselves (a worker started while the database is down exits).
    exits: int = 0
    restart_window: tuple[float, float] | None = None  # time.monotonic() at its start and end
    restart_error: str | None = None
    log: list[str] = field(default_factory=list)


def keep_workers(fleet: Fleet, faults: Faults) -> None:
    for worker in fleet.workers:
        if not worker.alive():
            faults.exits += 1
            faults.log.append(f"{worker.name} had exited; started again")
            worker.start()


async def inject(
    fleet: Fleet,
    cluster: Cluster,
    *,
    seconds: float,
    kill_every: float,
    restart_after: float,
    restart_mode: str,
    rng: random.Random,
) -> Faults:
    faults = Faults()
    started = time.monotonic()
    deadline = started + seconds
    restart: asyncio.Task[None] | None = None

    async def restart_postgres() -> None:
        begun = time.monotonic()
        try:
            await asyncio.to_thread(cluster.restart, restart_mode)
        except Exception as exc:
            faults.restart_error = str(exc)
        faults.restart_window = (begun, time.monotonic())
        faults.log.append(f"PostgreSQL restart -m {restart_mode}: {time.monotonic() - begun:.1f} s")

    while True:
        wait = min(kill_every * rng.uniform(0.5, 1.5), deadline - time.monotonic())
        if wait <= 0:
            break
        await asyncio.sleep(wait)
        if restart is None and time.monotonic() - started >= restart_after:
            restart = asyncio.create_task(restart_postgres())
        keep_workers(fleet, faults)
        # Only a worker that is running jobs: killing one still importing its modules (seconds
        # on a busy machine) would test nothing and leave the queue without workers.
        working = [worker for worker in fleet.workers if worker.alive() and worker.ready()]
        if not working:
            faults.skipped += 1
            continue
        victim = rng.choice(working)
        victim.kill()
        faults.kills += 1
        victim.start()
    if restart is not None:
        await restart
    return faults
