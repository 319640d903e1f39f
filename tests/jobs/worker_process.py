"""A worker process for the process tests: ``python tests/jobs/worker_process.py URL [options]``.

It runs ``run_worker_process`` (the ``highseas worker`` entry point) with one test handler,
``tests.sleep``, until SIGTERM or SIGINT. The handler appends ``start``/``end`` lines
(``<event> <job id> <attempt> <pid>``) to the file named in its payload, with O_APPEND so that
lines of several processes never interleave, sleeps ``seconds``, and adds one Agent named after
the job in the job's transaction: the effect that must commit exactly once. A cancelled run
logs its ``end`` too; a killed one does not.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

from highseas.config import Settings
from highseas.jobs import JobContext, Queue, Registry, run_worker_process
from highseas.models import Agent


def append_line(path: str, line: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, f"{line}\n".encode())
    finally:
        os.close(descriptor)


def build_registry(max_sleep: float = float("inf")) -> Registry:
    registry = Registry()

    @registry.handler("tests.sleep", queue=Queue.CALLBACKS)
    async def sleep(context: JobContext) -> None:
        log = context.payload["log"]
        trace = f"{context.job_id} {context.attempt} {os.getpid()}"
        append_line(log, f"start {trace}")
        try:
            await asyncio.sleep(min(context.payload["seconds"], max_sleep))
            context.session.add(Agent(name=f"job-{context.job_id}"))
        finally:
            # Also when cancelled: the run is over either way, only its effect differs.
            append_line(log, f"end {trace}")

    return registry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--poll", type=float, default=0.1)
    parser.add_argument("--grace", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--max-sleep", type=float, default=float("inf"))
    parser.add_argument("--ready-file", type=Path, help="created once the worker is starting")
    args = parser.parse_args()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(message)s")
    settings = Settings(
        database_url=args.database_url,
        job_lease_seconds=args.lease,
        job_poll_seconds=args.poll,
        job_shutdown_grace_seconds=args.grace,
    )
    registry = build_registry(args.max_sleep)
    if args.ready_file:
        args.ready_file.touch()
    asyncio.run(run_worker_process(settings, registry, concurrency=args.concurrency, queues=None))


if __name__ == "__main__":
    main()
