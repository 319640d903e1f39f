"""The ``highseas`` command: serve, worker, agent, pool, db (contract §7)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from highseas import metrics
from highseas.agents import service as agents
from highseas.background import job_registry
from highseas.clock import set_service_zone, to_wire, utcnow
from highseas.config import Settings, get_settings
from highseas.customers import pool_import as pool_import_module
from highseas.customers.files import PoolFile, UnreadableFile
from highseas.db import Database, shown_url
from highseas.errors import HighseasError
from highseas.imports import repository as imports_repository
from highseas.imports.service import IDEMPOTENCY_TTL
from highseas.jobs import Queue, run_worker_process
from highseas.jobs import queue as queue_module
from highseas.logs import configure_logging
from highseas.migrate import upgrade
from highseas.models import JobState

app = typer.Typer(
    help="highseas: the customer-pool backend for AI outbound calling.", no_args_is_help=True
)
agent_app = typer.Typer(help="Agents (partners) and their API tokens.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
pool_app = typer.Typer(help="The customer pool (客户公海).", no_args_is_help=True)
jobs_app = typer.Typer(help="Background jobs: failures and retention.", no_args_is_help=True)
app.add_typer(agent_app, name="agent")
app.add_typer(pool_app, name="pool")
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")

# Jobs deleted per transaction by `jobs prune`: a SQLite write lock held for milliseconds.
PRUNE_BATCH = 5000

T = TypeVar("T")
logger = logging.getLogger(__name__)


class Encoding(StrEnum):
    UTF8 = "utf-8"
    GBK = "gbk"


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        typer.echo(f"highseas: invalid configuration: {_setting_errors(exc)}", err=True)
        raise typer.Exit(2) from exc


_UNSHOWN_SETTINGS = frozenset({"database_url", "secret_key"})


def _setting_errors(exc: ValidationError) -> str:
    """Each bad setting by its environment variable, with what was given."""
    problems = []
    for error in exc.errors():
        # A default derived from a bad setting (log_format from env) is not a second problem.
        if error["type"] == "default_factory_not_called":
            continue
        if not error["loc"]:  # a rule across settings: its message names them
            problems.append(error["msg"])
            continue
        name = "HIGHSEAS_" + "_".join(str(part) for part in error["loc"]).upper()
        # A database URL may hold a password: its error says what is wrong without it.
        given = "" if error["loc"][0] in _UNSHOWN_SETTINGS else f" (got {error['input']!r})"
        problems.append(f"{name}: {error['msg'].removeprefix('Value error, ')}{given}")
    return "; ".join(problems)


def _upgrade(settings: Settings) -> None:
    """Bring the schema up to date; a database that cannot be reached ends the command with
    one line saying so (exit 1), not a traceback: a supervisor restarts a process started
    before its database was up (docs/deploy.md, §6)."""
    try:
        upgrade(settings.database_url)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        typer.echo(
            f"highseas: cannot use the database {shown_url(settings.database_url)}: {reason}",
            err=True,
        )
        raise typer.Exit(1) from exc


def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one unit of work against the configured database, schema brought up to date first."""
    _upgrade(settings)

    async def run() -> T:
        database = Database(settings.database_url)
        try:
            async with database.transaction() as session:
                return await work(session)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except HighseasError as exc:
        typer.echo(f"highseas: {exc.message}", err=True)
        raise typer.Exit(1) from exc


def _freeze_start_up() -> None:
    """For a long-running process, once start-up is done: what it built (modules, settings,
    the app with its routes and schemas: some 170,000 objects) lives as long as the process,
    so it is moved out of the garbage collector's reach. A full collection then walks only
    what requests and jobs left behind, instead of pausing the event loop for about 100 ms
    each time (bench/README.md)."""
    gc.collect()
    gc.freeze()


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="address to bind (default HIGHSEAS_HOST or 127.0.0.1)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default HIGHSEAS_PORT or 8000)")] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="API only: run workers separately")
    ] = False,
) -> None:
    """Serve the API (and a job worker, unless --no-worker). Migrates the database first."""
    settings = _settings()
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = settings.model_copy(update=overrides)
    configure_logging(settings.log_level, settings.log_format)
    _upgrade(settings)
    url = f"http://{settings.host}:{settings.port}"
    # Logged, not printed: in production every line on stderr is one JSON record.
    logger.info(
        "highseas %s (docs: %s/docs, database: %s); get an API token with: highseas agent "
        "create NAME (from a checkout: .venv/bin/highseas agent create NAME)",
        url,
        url,
        shown_url(settings.database_url),
    )
    # Imported here: the app (every endpoint and its schemas) is a second of start-up that
    # workers and one-shot commands do not need.
    from highseas.main import create_app  # noqa: PLC0415

    application = create_app(settings, run_worker=not no_worker)
    _freeze_start_up()
    uvicorn.run(
        application, host=settings.host, port=settings.port, log_config=None, access_log=False
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="jobs run at once, per queue")] = 2,
    queue: Annotated[
        list[Queue] | None, typer.Option(help="serve only this queue (repeatable; default all)")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="serve Prometheus metrics on this port (default HIGHSEAS_METRICS_PORT; none)",
        ),
    ] = None,
    metrics_host: Annotated[
        str | None,
        typer.Option(
            help="address of the metrics port (default HIGHSEAS_METRICS_HOST or 127.0.0.1)"
        ),
    ] = None,
) -> None:
    """Run job workers only (scale-out: any number, on any machine, against one PostgreSQL)."""
    settings = _settings()
    overrides = {"metrics_port": metrics_port, "metrics_host": metrics_host}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level, settings.log_format)
    registry = job_registry(settings)
    _upgrade(settings)
    if settings.metrics_port is not None:
        try:
            metrics.serve(settings.metrics_host, settings.metrics_port)
        except OSError as exc:
            typer.echo(
                f"highseas: cannot serve metrics on port {settings.metrics_port}: {exc}", err=True
            )
            raise typer.Exit(2) from exc
    queues = [q.value for q in queue] if queue else None
    _freeze_start_up()
    asyncio.run(run_worker_process(settings, registry, concurrency=concurrency, queues=queues))


@agent_app.command("create")
def agent_create(name: Annotated[str, typer.Argument(help="the agent's name")]) -> None:
    """Create an agent and its first API token; prints {"agent_id", "token"} (shown once)."""

    async def work(session: AsyncSession) -> dict[str, object]:
        agent, issued = await agents.create_agent(session, name)
        return {"agent_id": str(agent.id), "token": issued.token}

    _print_json(_in_transaction(_settings(), work))


@agent_app.command("token")
def agent_token(
    agent_id: Annotated[uuid.UUID, typer.Argument(help="the agent's id")],
    expires_in: Annotated[
        int | None, typer.Option(min=1, help="seconds until the token expires (default: never)")
    ] = None,
) -> None:
    """Issue another API token for an agent; prints {"agent_id", "token", "expires_at"}."""

    async def work(session: AsyncSession) -> dict[str, object]:
        ttl = timedelta(seconds=expires_in) if expires_in is not None else None
        issued = await agents.issue_token(session, agent_id, expires_in=ttl)
        expires_at = issued.record.expires_at
        return {
            "agent_id": str(issued.agent_id),
            "token": issued.token,
            "expires_at": to_wire(expires_at) if expires_at else None,
        }

    _print_json(_in_transaction(_settings(), work))


@agent_app.command("revoke")
def agent_revoke(token: Annotated[str, typer.Argument(help="the token to revoke")]) -> None:
    """Revoke an API token: it gets 401 from then on."""

    async def work(session: AsyncSession) -> dict[str, object]:
        record = await agents.revoke_token(session, token)
        return {"revoked": True, "agent_id": str(record.agent_id), "token_prefix": record.prefix}

    _print_json(_in_transaction(_settings(), work))


@pool_app.command("import")
def pool_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or XLSX; header row: phone, name, email, "
            "company, sex, sort, extra, created_at, component names"
        ),
    ],
    user: Annotated[str, typer.Option("--user", help="the user (main account) id")],
    encoding: Annotated[
        Encoding,
        typer.Option(case_sensitive=False, help="CSV text encoding (a UTF-8 BOM is accepted)"),
    ] = Encoding.UTF8,
) -> None:
    """Bulk-load a file into a user's pool; prints a JSON summary as the last line."""
    settings = _settings()
    set_service_zone(settings.zone)
    _upgrade(settings)
    pool_file = PoolFile(file, encoding.value)

    async def run() -> pool_import_module.Summary:
        database = Database(settings.database_url)
        try:
            with _progress() as progress:
                total = await asyncio.to_thread(pool_file.count_rows)
                bars: list[TaskID] = []

                def advance(rows: int) -> None:
                    # The bar appears once the user and the header have passed their checks.
                    if not bars:
                        bars.append(progress.add_task(f"importing {file.name}", total=total))
                    progress.advance(bars[0], rows)

                return await pool_import_module.import_file(
                    database, user, pool_file, on_progress=advance
                )
        finally:
            await database.dispose()

    try:
        summary = asyncio.run(run())
    except UnreadableFile as exc:
        typer.echo(f"highseas: {exc}", err=True)
        raise typer.Exit(2) from exc
    except HighseasError as exc:
        typer.echo(f"highseas: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    _print_json(dataclasses.asdict(summary))


@jobs_app.command("failed")
def jobs_failed(
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 50,
) -> None:
    """List jobs that failed for good, one JSON object per line (their batches already say
    so on identification and in a `failed` callback)."""

    async def work(session: AsyncSession) -> list[dict[str, object]]:
        return [
            {
                "id": job.id,
                "queue": job.queue,
                "kind": job.kind,
                "payload": job.payload,
                "attempts": job.attempts,
                "finished_at": to_wire(job.finished_at) if job.finished_at else None,
                "last_error": job.last_error,
            }
            for job in await queue_module.failed_jobs(session, limit=limit)
        ]

    for line in _in_transaction(_settings(), work):
        _print_json(line)


@jobs_app.command("prune")
def jobs_prune(
    older_than_days: Annotated[
        float, typer.Option(min=0, help="delete jobs that finished more than this many days ago")
    ] = 7,
    failed: Annotated[bool, typer.Option(help="delete failed jobs too (kept by default)")] = False,
) -> None:
    """Delete finished jobs (run it from cron): nothing else removes them. Batches, callback
    deliveries and task numbers are separate tables and stay. Also deletes Idempotency-Keys
    past their 24 hours. Prints {"deleted": N, "idempotency_keys": M}."""
    settings = _settings()
    _upgrade(settings)
    states = [JobState.SUCCEEDED, JobState.FAILED] if failed else [JobState.SUCCEEDED]
    cutoff = utcnow() - timedelta(days=older_than_days)

    expired = utcnow() - IDEMPOTENCY_TTL

    async def in_batches(
        database: Database, prune: Callable[[AsyncSession], Awaitable[int]]
    ) -> int:
        deleted = 0
        while True:
            async with database.transaction() as session:
                batch = await prune(session)
            deleted += batch
            if batch < PRUNE_BATCH:
                return deleted

    async def run() -> dict[str, int]:
        database = Database(settings.database_url)
        try:
            jobs = await in_batches(
                database,
                lambda session: queue_module.prune_finished(
                    session, states=states, finished_before=cutoff, limit=PRUNE_BATCH
                ),
            )
            keys = await in_batches(
                database,
                lambda session: imports_repository.prune_idempotency_keys(
                    session, created_before=expired, limit=PRUNE_BATCH
                ),
            )
        finally:
            await database.dispose()
        return {"deleted": jobs, "idempotency_keys": keys}

    _print_json(asyncio.run(run()))


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


@app.command()
def demo() -> None:
    """A tour of a few seconds, offline: a throwaway service, pool, seed request, callback,
    download."""
    from highseas import demo as demo_module  # noqa: PLC0415  (it builds the app: see serve)

    raise typer.Exit(demo_module.main())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to HIGHSEAS_DATABASE_URL, one log line each."""
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)  # alembic's "Running upgrade"
    _upgrade(settings)
    logger.info("database %s is up to date", shown_url(settings.database_url))
