"""The receivers of docs/callbacks.md, run as written against real deliveries."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from highseas.callbacks.signing import new_secret
from highseas.config import Settings
from highseas.db import Database
from tests.callbacks.steps import PAYLOAD, configure, deliver, delivery, emit
from tests.fixtures.factories import AgentWithToken

DOC = Path(__file__).resolve().parents[2] / "docs" / "callbacks.md"
RECEIVERS = {
    "python": ("receiver.py", "# receiver.py"),
    "node": ("receiver.mjs", "// receiver.mjs"),
}


def _example(first_line: str) -> str:
    for block in re.findall(r"```\w*\n(.*?)```", DOC.read_text(), flags=re.DOTALL):
        if block.startswith(first_line):
            return str(block)
    raise AssertionError(f"docs/callbacks.md has no example starting with {first_line!r}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _running(language: str, secret: str, directory: Path) -> Iterator[tuple[int, list[str]]]:
    """Start the documented receiver; yields its port and, once stopped, its output lines."""
    if language == "node" and shutil.which("node") is None:
        pytest.skip("node is not installed")
    file_name, first_line = RECEIVERS[language]
    script = directory / file_name
    script.write_text(_example(first_line))
    port = _free_port()
    command = [sys.executable, str(script)] if language == "python" else ["node", str(script)]
    env = {**os.environ, "HIGHSEAS_CALLBACK_SECRET": secret, "PORT": str(port), "HOST": "127.0.0.1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    output: list[str] = []
    try:
        _wait_for(port, process)
        yield port, output
    finally:
        process.terminate()
        stdout, _ = process.communicate(timeout=10)
        output.extend(stdout.splitlines())


def _wait_for(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert process.poll() is None, "the receiver exited"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise AssertionError("the receiver did not start listening")


@pytest.mark.parametrize("language", list(RECEIVERS))
async def test_the_documented_receiver_accepts_a_signed_message(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    tmp_path: Path,
    language: str,
) -> None:
    secret = (await configure(client, agent, "http://127.0.0.1:9/"))["secret"]
    with _running(language, secret, tmp_path) as (port, output):
        await configure(client, agent, f"http://127.0.0.1:{port}/")
        batch_id = await emit(db, settings, agent)
        await deliver(db, settings)
    assert [a.status_code for a in (await delivery(db, batch_id)).attempts] == [204]
    assert len(output) == 1 and '"unique_id"' in output[0] and PAYLOAD["unique_id"] in output[0]


@pytest.mark.parametrize("language", list(RECEIVERS))
async def test_the_documented_receiver_refuses_another_secret(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    agent: AgentWithToken,
    tmp_path: Path,
    language: str,
) -> None:
    with _running(language, new_secret(), tmp_path) as (port, output):
        await configure(client, agent, f"http://127.0.0.1:{port}/")
        batch_id = await emit(db, settings, agent)
        await deliver(db, settings)
    assert {a.status_code for a in (await delivery(db, batch_id)).attempts} == {401}
    assert output == []
