"""Log lines as configure_logging writes them: text by default, JSON with the request id of
the request and the batch of the job they were logged for."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from highseas.config import Environment, Settings
from highseas.db import Database
from highseas.logs import LogFormat, configure_logging
from tests.fixtures.receiver import Receiver
from tests.imports.scenario import finish, make_scenario

SECRET = "s" * 40


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """What the process writes to stderr; the root logger is put back afterwards."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    quieted = [logging.getLogger(name) for name in ("", "httpx")]
    levels = [logger.level for logger in quieted]
    try:
        yield lambda: capsys.readouterr().err
    finally:
        root.handlers[:] = handlers
        for logger, level in zip(quieted, levels, strict=True):
            logger.setLevel(level)
        logging.getLogger("uvicorn.access").disabled = False


def json_lines(written: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in written.splitlines()]


Entry = dict[str, Any]


def the_one(
    entries: list[dict[str, Any]], where: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    [entry] = [entry for entry in entries if where(entry)]
    return entry


def test_log_format_follows_the_environment() -> None:
    assert Settings().log_format is LogFormat.TEXT
    production = Settings(env=Environment.PRODUCTION, secret_key=SECRET)
    assert production.log_format is LogFormat.JSON
    chosen = Settings(env=Environment.PRODUCTION, secret_key=SECRET, log_format=LogFormat.TEXT)
    assert chosen.log_format is LogFormat.TEXT


def test_text_lines_are_as_before(stderr: Callable[[], str]) -> None:
    configure_logging("INFO")
    logging.getLogger("highseas.test").info("hello %s", "world")
    line = stderr().strip()
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(f"{when} INFO highseas.test: hello world", line)


def test_json_lines_carry_the_fields_and_the_traceback(stderr: Callable[[], str]) -> None:
    configure_logging("INFO", LogFormat.JSON)
    logger = logging.getLogger("highseas.test")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("it failed: %s", "号码导入")
    [entry] = json_lines(stderr())
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "highseas.test"
    assert entry["message"] == "it failed: 号码导入"
    assert entry["exc_info"].startswith("Traceback") and "RuntimeError: boom" in entry["exc_info"]
    logged_at = datetime.fromisoformat(entry["ts"])
    assert logged_at.tzinfo is not None and logged_at.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - logged_at).total_seconds()) < 60
    # Outside a request or a job there is nothing to tag it with.
    assert not {"request_id", "batch_id", "job_id", "job_kind"} & entry.keys()


async def test_json_lines_of_a_request_carry_its_request_id(
    stderr: Callable[[], str], client: httpx.AsyncClient
) -> None:
    configure_logging("INFO", LogFormat.JSON)
    await client.get("/healthz", headers={"X-Request-ID": "trace-json-1"})
    await client.get("/healthz")
    entries = json_lines(stderr())
    tagged = the_one(entries, lambda e: e.get("request_id") == "trace-json-1")
    assert tagged["logger"] == "highseas.request" and "/healthz" in tagged["message"]
    # The line's parts as fields too, for a collector.
    assert (tagged["method"], tagged["path"], tagged["status"]) == ("GET", "/healthz", 200)
    assert isinstance(tagged["duration_ms"], float) and tagged["duration_ms"] >= 0
    requests = [e for e in entries if e["logger"] == "highseas.request"]
    assert len(requests) == 2 and requests[1]["request_id"] not in ("trace-json-1", None)


async def test_json_lines_of_a_job_carry_its_batch(
    stderr: Callable[[], str],
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    scenario = await make_scenario(
        client, db, receiver, tmp_path, [{"phone": "13012121212", "operator": 1}]
    )
    configure_logging("INFO", LogFormat.JSON)
    response = await client.post(
        scenario.url(), json={"operator": [1]}, headers=scenario.agent.headers
    )
    unique_id = response.json()["data"]["unique_id"]
    await finish(db, settings)
    entries = json_lines(stderr())

    imported = the_one(entries, lambda e: e.get("job_kind") == "imports.customer_to_task")
    assert imported["batch_id"] == unique_id and isinstance(imported["job_id"], int)
    assert "succeeded" in imported["message"] and "request_id" not in imported
    # The delivery job's own records (the attempt) and the worker's carry the batch too.
    delivery = [e for e in entries if e.get("job_kind") == "callbacks.deliver"]
    assert {e["logger"] for e in delivery} == {"highseas.callbacks.service", "highseas.jobs.worker"}
    assert all(e["batch_id"] == unique_id for e in delivery)
    # The accept's own line names the batch it made: request id → unique_id → the job's lines.
    accepted = the_one(entries, lambda e: e["logger"] == "highseas.request")
    assert accepted["request_id"] == response.headers["x-request-id"]
    assert accepted["batch_id"] == unique_id
