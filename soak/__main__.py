"""``python -m soak``: highseas scaled out on PostgreSQL, under load and faults (issue 7).

Its own PostgreSQL (initdb in a temporary directory), 2 ``highseas serve --no-worker`` and
3 ``highseas worker`` processes, a callback receiver, a bounded load of pool imports and
imports into tasks, a worker SIGKILLed every few seconds and PostgreSQL restarted once; then
every accepted batch is checked. Exit 0 only when lost/doubled is 0/0 and every check passes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from soak import verify
from soak.faults import Faults, inject, keep_workers
from soak.fleet import HIGHSEAS, Fleet
from soak.load import Load, Sent, create_accounts, create_agents, phone_universe
from soak.postgres import Cluster, free_port
from soak.receiver import Receiver

API_PROCESSES = 2
WORKER_PROCESSES = 3
AGENTS = ("agent0", "agent1")
# After the database is back, pooled connections are replaced on first use (pre-ping): a
# request failing this long after the restart is a bug, not the restart.
RESTART_GRACE_SECONDS = 10.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="load duration (default 120)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--rate", type=float, default=6, help="requests/s at most")
    parser.add_argument("--kill-every", type=float, default=5, help="seconds between SIGKILLs")
    parser.add_argument("--restart-mode", choices=("fast", "immediate"), default="immediate")
    parser.add_argument("--drain-seconds", type=float, default=120, help="bound on the drain")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--users-per-agent", type=int, default=3)
    parser.add_argument("--tasks-per-user", type=int, default=4)
    parser.add_argument("--universe", type=int, default=2500, help="distinct phone numbers")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the run's directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    signal.signal(signal.SIGTERM, _interrupt)
    root = Path(tempfile.mkdtemp(prefix="highseas-soak-"))
    print(f"soak: seed {seed}, directory {root}", flush=True)
    passed = False
    try:
        with ExitStack() as stack:
            receiver = stack.enter_context(Receiver().running())
            cluster = Cluster(root)
            stack.callback(cluster.stop)
            passed = run(
                args, seed=seed, root=root, cluster=cluster, receiver=receiver, stack=stack
            )
    except KeyboardInterrupt:
        print("soak: interrupted", flush=True)
        return 130
    finally:
        if args.keep:
            print(f"soak: logs and the database kept in {root}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    if not passed:
        print(f"soak: to keep the logs, run again with --keep --seed {seed}", flush=True)
    return 0 if passed else 1


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(
    args: argparse.Namespace,
    *,
    seed: int,
    root: Path,
    cluster: Cluster,
    receiver: Receiver,
    stack: ExitStack,
) -> bool:
    began = time.monotonic()
    cluster.create()
    ports = [free_port() for _ in range(API_PROCESSES)]
    env = service_env(cluster, root, public_url=f"http://127.0.0.1:{ports[0]}")
    initialised = time.monotonic()
    subprocess.run([*HIGHSEAS, "db", "upgrade"], env=env, cwd=root, check=True, capture_output=True)
    upgraded = time.monotonic()
    fleet = Fleet(
        env, root, ports=ports, workers=WORKER_PROCESSES, concurrency=args.worker_concurrency
    )
    stack.callback(fleet.stop)
    fleet.start()
    tokens = create_agents(env, AGENTS)
    fleet.wait_ready(timeout=90)
    apis = [api.base_url for api in fleet.apis]
    accounts = asyncio.run(
        create_accounts(
            apis[0],
            tokens,
            receiver,
            users_per_agent=args.users_per_agent,
            tasks_per_user=args.tasks_per_user,
        )
    )
    rng = random.Random(seed)
    load = Load(
        apis=apis,
        accounts=accounts,
        universe=phone_universe(rng, args.universe),
        concurrency=args.concurrency,
        rate=args.rate,
        seed=seed,
    )
    print(
        f"soak: ready in {time.monotonic() - began:.1f} s (initdb {initialised - began:.1f} s, "
        f"db upgrade {upgraded - initialised:.1f} s, processes and accounts "
        f"{time.monotonic() - upgraded:.1f} s): PostgreSQL on 127.0.0.1:{cluster.port}, "
        f"{API_PROCESSES} API + {WORKER_PROCESSES} worker processes, {len(accounts)} users, "
        f"{sum(len(a.tasks) for a in accounts)} tasks; load for {args.seconds:.0f} s",
        flush=True,
    )

    async def load_under_faults() -> Faults:
        faults = inject(
            fleet,
            cluster,
            seconds=args.seconds,
            kill_every=args.kill_every,
            restart_after=args.seconds * 0.4,
            restart_mode=args.restart_mode,
            rng=random.Random(seed + 1),
        )
        _, injected = await asyncio.gather(load.run(args.seconds), faults)
        return injected

    load_started = time.monotonic()
    faults = asyncio.run(load_under_faults())
    load_seconds = time.monotonic() - load_started
    drained, left = verify.drain(
        cluster.url(), args.drain_seconds, lambda: keep_workers(fleet, faults)
    )
    drain_seconds = time.monotonic() - load_started - load_seconds
    accepted = [s for s in load.sent if s.accepted]
    identification = asyncio.run(verify.identify(apis, accepted, args.concurrency))
    findings = verify.check(
        cluster.url(),
        load.sent,
        receiver.snapshot(),
        identification,
        failed_while_up(load.sent, faults),
        server_key=env["HIGHSEAS_SECRET_KEY"],
    )
    findings.failures += verify.downloads(cluster.url(), receiver.snapshot(), rng)
    if not drained:
        findings.lost.append(f"not finished {args.drain_seconds:.0f} s after the load: {left}")
    if faults.restart_window is None or faults.restart_error:
        findings.failures.append(f"PostgreSQL was not restarted: {faults.restart_error}")
    report(
        load.sent,
        load_seconds=load_seconds,
        drain_seconds=drain_seconds,
        faults=faults,
        jobs=verify.job_stats(cluster.url()),
        findings=findings,
    )
    print("warnings and errors logged by the highseas processes:", flush=True)
    print("\n".join(log_summary(fleet)) or "  none", flush=True)
    print(f"soak: {time.monotonic() - began:.1f} s in all", flush=True)
    return findings.passed


def service_env(cluster: Cluster, root: Path, *, public_url: str) -> dict[str, str]:
    """What every highseas process gets: one database, one secret key, one public URL."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("HIGHSEAS_")}
    return {
        **inherited,
        "HIGHSEAS_ENV": "production",
        "HIGHSEAS_DATABASE_URL": cluster.url(),
        "HIGHSEAS_SECRET_KEY": secrets.token_urlsafe(48),
        "HIGHSEAS_DATA_DIR": str(root / "highseas-data"),
        "HIGHSEAS_PUBLIC_URL": public_url,
        "HIGHSEAS_CALLBACK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
        "HIGHSEAS_CALLBACK_RETRY_SCHEDULE": "1,1,2,2,3",
        "HIGHSEAS_CALLBACK_TIMEOUT": "5",
        # A killed worker's jobs are taken over after 3 s instead of 30.
        "HIGHSEAS_JOB_LEASE_SECONDS": "3",
        "HIGHSEAS_JOB_SHUTDOWN_GRACE_SECONDS": "5",
        # Several chunks per import, so that kills land between checkpoints.
        "HIGHSEAS_IMPORT_CHUNK_ROWS": "500",
    }


def failed_while_up(sent: list[Sent], faults: Faults) -> list[Sent]:
    """Requests that failed although the database was up from their start to their end."""
    if faults.restart_window is None:
        return []
    down, up = faults.restart_window
    return [
        s
        for s in sent
        if not s.accepted
        and s.status != 409
        and (s.at + s.latency < down or s.at > up + RESTART_GRACE_SECONDS)
    ]


def report(
    sent: list[Sent],
    *,
    load_seconds: float,
    drain_seconds: float,
    faults: Faults,
    jobs: dict[str, float],
    findings: verify.Findings,
) -> None:
    accepted = [s for s in sent if s.accepted]
    latencies = sorted(s.latency * 1000 for s in accepted)
    p50 = statistics.median(latencies) if latencies else 0.0
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    pool = sum(1 for s in accepted if s.kind == "api_async_customer")
    refused = sum(1 for s in sent if not s.accepted)
    jobs_per_second = jobs["succeeded"] / jobs["seconds"] if jobs["seconds"] else 0.0
    lines = [
        f"faults: {faults.kills} workers SIGKILLed ({faults.skipped} times none was up yet), "
        f"{faults.exits} exited by themselves, "
        f"PostgreSQL restarted {1 if faults.restart_window else 0}x",
        *(f"  {line}" for line in faults.log if "PostgreSQL" in line),
        f"requests: {len(sent)} sent, {len(accepted)} accepted ({pool} pool imports, "
        f"{len(accepted) - pool} customer_to_task), {refused} not accepted; "
        f"{len(accepted) / load_seconds:.1f} requests/s accepted",
        f"accept latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        f"jobs: {int(jobs['succeeded'])} succeeded, {int(jobs['failed'])} failed, "
        f"{int(jobs['retried'])} ran more than once; {jobs_per_second:.1f} jobs/s; "
        f"drained {drain_seconds:.1f} s after the load",
        *(f"note: {note}" for note in findings.notes),
    ]
    for title, items in (
        ("LOST", findings.lost),
        ("DOUBLED", findings.doubled),
        ("FAILED", findings.failures),
    ):
        lines += [f"{title}: {item}" for item in items[:20]]
        if len(items) > 20:
            lines.append(f"{title}: … and {len(items) - 20} more")
    lines.append(f"lost/doubled = {len(findings.lost)}/{len(findings.doubled)}")
    lines.append("soak: PASSED" if findings.passed else "soak: FAILED")
    print("\n".join(lines), flush=True)


def log_summary(fleet: Fleet) -> list[str]:
    """Warnings and errors of every highseas process, counted by kind (ids and numbers
    blanked): what the faults cost, and where to look when a check fails."""
    kinds: Counter[str] = Counter()
    for log in fleet.logs():
        for line in log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
                level, message = str(record["level"]), str(record["message"])
            except (ValueError, KeyError, TypeError):
                text = _TEXT_RECORD.match(line)
                if text is None:
                    continue
                level, message = text.group(1), text.group(2)
            if level in ("WARNING", "ERROR", "CRITICAL"):
                kinds[f"{level} {_BLANKS.sub('#', message)[:110]}"] += 1
    return [f"{count:5d} × {kind}" for kind, count in kinds.most_common(12)]


_TEXT_RECORD = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) \S+: (.*)$")
_BLANKS = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|msg_[0-9a-f]+|[0-9a-f]{32}|\d+(\.\d+)?")


if __name__ == "__main__":
    sys.exit(main())
