"""The `highseas` command, from outside as a new user would: real processes, real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

HIGHSEAS = [sys.executable, "-m", "highseas"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HIGHSEAS_DATABASE_URL": database_url,
        "HIGHSEAS_DATA_DIR": str(tmp_path / "data"),
    }


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`highseas ARGS` to its end, whatever its exit code."""
    return subprocess.run(
        [*HIGHSEAS, *args], check=False, env=env, capture_output=True, text=True, timeout=60
    )


def cli(env: dict[str, str], *args: str) -> dict[str, object]:
    done = run(env, *args)
    assert done.returncode == 0, done.stderr
    last_line = done.stdout.strip().splitlines()[-1]
    result: dict[str, object] = json.loads(last_line)
    return result


@contextmanager
def running_server(env: dict[str, str], output: list[str] | None = None) -> Iterator[str]:
    """`highseas serve` on a free port until the block ends; then SIGTERM and a clean stop.
    ``output`` gets what the process wrote, once it has stopped."""
    port = _free_port()
    process = subprocess.Popen(
        [*HIGHSEAS, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "highseas serve did not become ready"
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            logged, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    if output is not None:
        output.append(logged)
    # uvicorn re-raises the signal it handled once shutdown is complete, so a clean stop ends
    # "killed by SIGTERM" on purpose (supervisors see why it stopped); the log shows it was clean.
    assert process.returncode in (0, -signal.SIGTERM), logged
    assert "Application shutdown complete" in logged, logged
    assert "stopped" in logged, logged  # the in-process job worker drained


@pytest.fixture
def server(env: dict[str, str], db: object) -> Iterator[str]:
    """A server on this backend's database; ``db`` empties it afterwards."""
    with running_server(env) as base:
        yield base


def test_serve_migrates_a_fresh_database(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    fresh = {
        **os.environ,
        "HIGHSEAS_DATABASE_URL": f"sqlite:///{path}",
        "HIGHSEAS_DATA_DIR": str(tmp_path),
    }
    with running_server(fresh) as base:
        with closing(sqlite3.connect(path)) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {"alembic_version", "agents", "agent_tokens", "users", "jobs"} <= tables
        agent = cli(fresh, "agent", "create", "first")
        response = httpx.get(
            f"{base}/agent-api/token", headers={"Authorization": f"Bearer {agent['token']}"}
        )
        assert response.status_code == 200


def test_tokens_and_tenancy_over_real_http(server: str, env: dict[str, str]) -> None:
    first = cli(env, "agent", "create", "first agency")
    second = cli(env, "agent", "create", "second agency")
    assert set(first) == {"agent_id", "token"}

    def bearer(who: dict[str, object]) -> dict[str, str]:
        return {"Authorization": f"Bearer {who['token']}"}

    with httpx.Client(base_url=server, timeout=10) as http:
        ok = http.get("/agent-api/token", headers=bearer(first))
        assert ok.status_code == 200
        assert ok.json()["data"]["agent_id"] == first["agent_id"]
        assert ok.headers["x-request-id"]

        bad = http.get("/agent-api/token", headers={"Authorization": "Bearer hs_not-a-token"})
        assert bad.status_code == 401
        assert bad.json()["error"] == "token_invalid"
        assert bad.json()["request_id"] == bad.headers["x-request-id"]

        user = http.post("/agent-api/user", json={"name": "主账号"}, headers=bearer(first))
        assert user.status_code == 200
        user_id = user.json()["data"]["id"]
        mine = http.get(f"/agent-api/user/{user_id}/subset_users", headers=bearer(first))
        assert mine.status_code == 200
        theirs = http.get(f"/agent-api/user/{user_id}/subset_users", headers=bearer(second))
        assert theirs.status_code == 403
        assert theirs.json()["error"] == "user_forbidden"

        another = cli(env, "agent", "token", str(first["agent_id"]), "--expires-in", "3600")
        assert http.get("/agent-api/token", headers=bearer(another)).json()["data"]["expires_at"]
        cli(env, "agent", "revoke", str(first["token"]))
        revoked = http.get("/agent-api/token", headers=bearer(first))
        assert revoked.status_code == 401 and revoked.json()["error"] == "token_revoked"
        assert http.get("/agent-api/token", headers=bearer(another)).status_code == 200


def test_cli_errors_are_clear(env: dict[str, str], db: object) -> None:
    done = run(env, "agent", "revoke", "hs_unknown")
    assert done.returncode == 1 and "令牌不存在" in done.stderr
    done = run(
        {**env, "HIGHSEAS_ENV": "production", "HIGHSEAS_SECRET_KEY": "changeme"},
        "agent",
        "create",
        "x",
    )
    assert done.returncode == 2 and "HIGHSEAS_SECRET_KEY" in done.stderr
    done = run({**env, "HIGHSEAS_ENV": "prod"}, "agent", "create", "x")
    # The setting by its variable and what it got; nothing about defaults derived from it.
    assert done.returncode == 2, done.stderr
    assert "HIGHSEAS_ENV: Input should be 'development' or 'production' (got 'prod')" in done.stderr
    assert "log_format" not in done.stderr.lower()


def test_worker_command_runs_until_sigterm(env: dict[str, str], db: object) -> None:
    process = subprocess.Popen(
        [*HIGHSEAS, "worker", "--concurrency", "3", "--queue", "callbacks"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        lines: list[str] = []
        while not any("started" in line for line in lines):
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            lines.append(process.stdout.readline())
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, "".join(lines) + output
    assert "stopped" in output


def test_worker_takes_only_the_queues_jobs_run_on(env: dict[str, str]) -> None:
    done = run(env, "worker", "--queue", "default")
    assert done.returncode == 2, done.stderr
    assert "'default' is not one of" in done.stderr


def test_unreachable_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    url = f"postgresql://highseas:s3cret@127.0.0.1:{port}/highseas"
    data = str(tmp_path / "data")
    # libpq reads a password in the query string too; it is hidden there as well.
    for command, given, shown in (
        (["worker"], url, "postgresql://highseas:***@"),
        (["db", "upgrade"], url, "postgresql://highseas:***@"),
        (["worker"], f"{url}?sslmode=disable&password=s3cret", "?password=***&sslmode=disable"),
    ):
        env = {**os.environ, "HIGHSEAS_DATABASE_URL": given, "HIGHSEAS_DATA_DIR": data}
        done = run(env, *command)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("highseas: cannot use the database postgresql://")
        assert shown in done.stderr
        assert "Traceback" not in done.stderr and "s3cret" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("HIGHSEAS_DATABASE_URL", "garbage", "Could not parse"),
        ("HIGHSEAS_DATABASE_URL", "mysql://u:s3cret@h/db", "unsupported database URL scheme"),
        ("HIGHSEAS_LOG_LEVEL", "LOUD", "expected one of DEBUG, INFO"),
        ("HIGHSEAS_CALLBACK_RETRY_SCHEDULE", "-5,10", "a wait cannot be negative"),
        ("HIGHSEAS_CALLBACK_RETRY_SCHEDULE", "", "needs at least one wait"),
        ("HIGHSEAS_PUBLIC_URL", "not-a-url", "expected the service's public base"),
    ],
)
def test_a_bad_setting_is_one_line(tmp_path: Path, name: str, value: str, why: str) -> None:
    env = {**os.environ, "HIGHSEAS_DATA_DIR": str(tmp_path / "data"), name: value}
    # Every command reads the settings first; one case shows it for three of them.
    commands = [["jobs", "failed"]]
    if value == "garbage":
        commands += [["db", "upgrade"], ["worker"]]
    for command in commands:
        done = run(env, *command)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"highseas: invalid configuration: {name}: {why}")
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "s3cret" not in done.stderr


def test_db_upgrade_command(tmp_path: Path) -> None:
    fresh = {**os.environ, "HIGHSEAS_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    done = run(fresh, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stderr
    assert "Running upgrade  -> " in done.stderr  # each migration applied, by name
    again = run(fresh, "db", "upgrade")
    assert "Running upgrade" not in again.stderr and "up to date" in again.stderr
    assert (tmp_path / "fresh.db").stat().st_size > 0


def test_in_production_serve_writes_only_json_lines(tmp_path: Path) -> None:
    production = {
        **os.environ,
        "HIGHSEAS_ENV": "production",
        "HIGHSEAS_SECRET_KEY": "k" * 40,
        "HIGHSEAS_DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "HIGHSEAS_DATA_DIR": str(tmp_path),
    }
    output: list[str] = []
    with running_server(production, output) as base:
        assert httpx.get(f"{base}/healthz").status_code == 200
    records = [json.loads(line) for line in output[0].splitlines() if line.strip()]
    assert any("/docs" in record["message"] for record in records), output[0]
