"""`make soak`, short: the multi-process setup on its own PostgreSQL under load and faults.

The harness (soak/) starts its own cluster with initdb, two API processes and three workers,
kills workers and restarts PostgreSQL while it sends requests, then checks every accepted
batch. This runs it for a CI-sized while; `make soak` runs it for two minutes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CI_RUN = [
    "--seconds", "10",
    "--concurrency", "4",
    "--rate", "5",
    "--kill-every", "4",
    "--drain-seconds", "60",
]  # fmt: skip


def test_soak_loses_and_doubles_nothing() -> None:
    missing = [tool for tool in ("initdb", "pg_ctl") if shutil.which(tool) is None]
    if missing:
        message = f"the soak needs PostgreSQL's {' and '.join(missing)} in PATH"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    soak = subprocess.Popen(
        [sys.executable, "-m", "soak", *CI_RUN],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        report, _ = soak.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        # SIGTERM, not SIGKILL: the harness stops its processes and its PostgreSQL.
        soak.terminate()
        report, _ = soak.communicate(timeout=60)
        pytest.fail(f"the soak did not finish in 300 s:\n{report[-6000:]}")
    assert soak.returncode == 0, report[-6000:]
    assert "lost/doubled = 0/0" in report, report[-6000:]
