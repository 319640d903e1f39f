"""/metrics through the real app: what a request, a job and a callback attempt add to it.

Counters and histograms are process-wide and other tests move them too, so each test reads
them before and after and asserts the difference; the jobs gauge is read from the database,
which starts empty, so it is asserted as it is.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_fd_to_metric_families
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from highseas.background import job_registry
from highseas.batches import service as batches_service
from highseas.clock import utcnow
from highseas.config import Settings
from highseas.db import Database
from highseas.jobs import Queue, Worker
from highseas.main import create_app
from highseas.models import Batch, Job
from tests.callbacks import steps
from tests.fixtures.factories import make_agent
from tests.fixtures.receiver import Receiver
from tests.imports.scenario import Scenario, finish, make_scenario

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

IMPORT_ROUTE = "/agent-api/user/{user_id}/customer_to_task/{task_id}"
IMPORT_JOB = {"queue": "imports", "kind": "imports.customer_to_task"}
DELIVERY_JOB = {"queue": "callbacks", "kind": "callbacks.deliver"}
ROWS = [{"phone": f"1301212121{i}", "operator": 1} for i in range(5)]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grown(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def accept(client: httpx.AsyncClient, scenario: Scenario) -> str:
    response = await client.post(
        scenario.url(), json={"operator": [1]}, headers=scenario.agent.headers
    )
    assert response.status_code == 200, response.text
    unique_id: str = response.json()["data"]["unique_id"]
    return unique_id


async def test_metrics_need_no_token_and_stay_out_of_the_api_schema(
    client: httpx.AsyncClient,
) -> None:
    samples = await scrape(client)
    assert value(samples, "highseas_jobs", queue="imports", state="queued") == 0
    # Counters with a fixed label set are there before their first event, for alerts.
    for name, labels in [
        ("highseas_callback_attempts_total", {"outcome": "timeout"}),
        ("highseas_import_rows_total", {"result": "duplicate"}),
        ("highseas_pool_rows_total", {"result": "rejected"}),
    ]:
        assert (name, frozenset(labels.items())) in samples, name
    schema = (await client.get("/openapi.json")).json()
    assert "/metrics" not in schema["paths"]
    # The format the scraper asks for, as a worker's metrics server answers.
    plain = await client.get("/metrics")
    assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    accept = "application/openmetrics-text; version=1.0.0"
    openmetrics = await client.get("/metrics", headers={"Accept": accept})
    assert openmetrics.headers["content-type"].startswith(accept)
    families = text_fd_to_metric_families(io.StringIO(openmetrics.text))
    assert "highseas_jobs" in {family.name for family in families}
    assert openmetrics.text.endswith("# EOF\n")


async def test_metrics_can_be_turned_off(settings: Settings, db: Database) -> None:
    app = create_app(settings.model_copy(update={"metrics_enabled": False}), database=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_metrics_are_served_while_the_database_is_unreachable(
    settings: Settings, tmp_path: Path
) -> None:
    broken = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/missing/dir/x.db"})
    app = create_app(broken)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/readyz")).status_code == 503
        samples = await scrape(client)
    await app.state.db.dispose()
    assert not [name for name, _ in samples if name == "highseas_jobs"]
    count = "highseas_http_request_duration_seconds_count"
    assert value(samples, count, method="GET", route="/readyz", status_class="5xx") >= 1


async def test_requests_are_timed_under_their_route_template(
    client: httpx.AsyncClient, db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    scenario = await make_scenario(client, db, receiver, tmp_path, ROWS)
    before = await scrape(client)
    await accept(client, scenario)
    assert (await client.get(f"/agent-api/nowhere/{scenario.user_id}")).status_code == 404
    assert (await client.request("BREW", "/healthz")).status_code == 405
    response = await client.get("/metrics")
    after = parse(response.text)

    count = "highseas_http_request_duration_seconds_count"
    assert grown(before, after, count, method="POST", route=IMPORT_ROUTE, status_class="2xx") == 1
    assert grown(before, after, count, method="GET", route="unmatched", status_class="4xx") == 1
    assert grown(before, after, count, method="other", route="/healthz", status_class="4xx") == 1
    # A fast request lands in the smallest buckets, and in every bucket above them.
    bucket = "highseas_http_request_duration_seconds_bucket"
    labels = {"method": "POST", "route": IMPORT_ROUTE, "status_class": "2xx"}
    assert grown(before, after, bucket, **labels, le="+Inf") == 1
    # Ids in paths would give every user and task series of their own.
    assert scenario.user_id not in response.text
    assert scenario.task_id not in response.text


async def test_an_import_job_and_its_callback_are_counted(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    scenario = await make_scenario(client, db, receiver, tmp_path, ROWS)
    await accept(client, scenario)
    before = await scrape(client)
    assert value(before, "highseas_jobs", **_queued(IMPORT_JOB)) == 1

    await finish(db, settings)
    after = await scrape(client)
    assert value(after, "highseas_jobs", **_queued(IMPORT_JOB)) == 0
    assert value(after, "highseas_jobs", queue="imports", state="succeeded") == 1
    assert value(after, "highseas_jobs", queue="callbacks", state="succeeded") == 1

    assert grown(before, after, "highseas_job_wait_seconds_count", **IMPORT_JOB) == 1
    succeeded = {**IMPORT_JOB, "outcome": "succeeded"}
    assert grown(before, after, "highseas_job_run_seconds_count", **succeeded) == 1
    assert grown(before, after, "highseas_job_run_seconds_sum", **succeeded) > 0
    assert grown(before, after, "highseas_import_rows_total", result="imported") == len(ROWS)
    assert grown(before, after, "highseas_import_rows_total", result="duplicate") == 0
    assert grown(before, after, "highseas_import_chunk_seconds_count") == 1
    assert grown(before, after, "highseas_callback_attempts_total", outcome="delivered") == 1

    # The same numbers again: all already in the task.
    await accept(client, scenario)
    await finish(db, settings)
    again = await scrape(client)
    assert grown(after, again, "highseas_import_rows_total", result="imported") == 0
    assert grown(after, again, "highseas_import_rows_total", result="duplicate") == len(ROWS)


async def test_callback_attempts_by_outcome_and_retried_jobs(
    client: httpx.AsyncClient, db: Database, settings: Settings, receiver: Receiver
) -> None:
    agent = await make_agent(db)
    await steps.configure(client, agent, receiver.url())
    receiver.script(500)
    await steps.emit(db, settings, agent)
    before = await scrape(client)

    assert await steps.deliver(db, settings) == 2  # a 500, then the retry delivers
    after = await scrape(client)
    attempts = "highseas_callback_attempts_total"
    assert grown(before, after, attempts, outcome="http_error") == 1
    assert grown(before, after, attempts, outcome="delivered") == 1
    runs = "highseas_job_run_seconds_count"
    # The delivery job records a failed answer and succeeds; the next attempt is a new job.
    assert grown(before, after, runs, **DELIVERY_JOB, outcome="succeeded") == 2

    await client.put(
        "/agent-api/callback/api_customer_to_task",
        json={"url": f"http://127.0.0.1:{_closed_port()}/hook"},
        headers=agent.headers,
    )
    await steps.emit(db, settings, agent)
    await steps.deliver(db, settings)
    unreachable = await scrape(client)
    assert grown(after, unreachable, attempts, outcome="network_error") == 4  # 1 + 3 retries


async def test_a_failing_job_is_counted_as_retried_then_failed(
    client: httpx.AsyncClient, db: Database, settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    scenario = await make_scenario(client, db, receiver, tmp_path, ROWS)
    await accept(client, scenario)
    async with db.transaction() as session:
        # A filter the job cannot read: every attempt raises.
        await session.execute(update(Batch).values(request={"filter": "broken"}))
        await session.execute(update(Job).values(max_attempts=2))
    worker = Worker.from_settings(db, settings, registry=job_registry(settings))
    runs = "highseas_job_run_seconds_count"
    before = await scrape(client)

    assert await worker.run_one(Queue.IMPORTS)
    retried = await scrape(client)
    assert grown(before, retried, runs, **IMPORT_JOB, outcome="retried") == 1
    assert grown(before, retried, runs, **IMPORT_JOB, outcome="failed") == 0

    async with db.transaction() as session:
        await session.execute(update(Job).values(run_at=utcnow()))  # skip the backoff
    assert await worker.run_one(Queue.IMPORTS)
    failed = await scrape(client)
    assert grown(retried, failed, runs, **IMPORT_JOB, outcome="failed") == 1
    assert value(failed, "highseas_jobs", queue="imports", state="failed") == 1


async def test_rows_of_a_chunk_rolled_back_and_redone_count_once(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The one chunk of this import commits with the batch's result: when finishing fails,
    the chunk rolls back with it, and the retry's rows are the ones counted."""
    scenario = await make_scenario(client, db, receiver, tmp_path, ROWS)
    await accept(client, scenario)
    real_finish = batches_service.finish
    failures = []

    async def finish_failing_once(*args: Any, **kwargs: Any) -> None:
        if not failures:
            failures.append(1)
            raise RuntimeError("the database went away while finishing")
        await real_finish(*args, **kwargs)

    monkeypatch.setattr(batches_service, "finish", finish_failing_once)
    worker = Worker.from_settings(db, settings, registry=job_registry(settings))
    before = await scrape(client)
    assert await worker.run_one(Queue.IMPORTS)
    failed = await scrape(client)
    assert grown(before, failed, "highseas_import_rows_total", result="imported") == 0

    async with db.transaction() as session:
        await session.execute(update(Job).values(run_at=utcnow()))  # skip the backoff
    assert await worker.run_one(Queue.IMPORTS)
    retried = await scrape(client)
    assert grown(before, retried, "highseas_import_rows_total", result="imported") == len(ROWS)
    assert grown(before, retried, "highseas_import_rows_total", result="duplicate") == 0


def _queued(job: dict[str, str]) -> dict[str, Any]:
    return {"queue": job["queue"], "state": "queued"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_worker_serves_its_metrics_on_the_metrics_port(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    port = _closed_port()
    env = {
        **os.environ,
        "HIGHSEAS_DATABASE_URL": database_url,
        "HIGHSEAS_DATA_DIR": str(tmp_path / "data"),
        "HIGHSEAS_LOG_FORMAT": "json",  # and its log lines are JSON
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "highseas", "worker", "--metrics-port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the worker's metrics port did not open"
                time.sleep(0.2)
        assert response.status_code == 200
        families = {family.name for family in text_string_to_metric_families(response.text)}
        assert {"highseas_job_run_seconds", "highseas_callback_attempts"} <= families
        # The jobs gauge needs the database: API processes serve it.
        assert "highseas_jobs" not in families
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    logged = [json.loads(line) for line in output.splitlines()]
    assert any(entry["message"].endswith("stopped") for entry in logged)
