"""`highseas demo` from outside, as a newcomer runs it: a real process, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from highseas import demo

pytestmark = pytest.mark.slow


def test_the_demo_runs_the_seed_example_end_to_end(tmp_path: Path) -> None:
    # A foreign database URL in the environment must not matter: the demo brings its own.
    env = {**os.environ, "HIGHSEAS_DATABASE_URL": f"sqlite:///{tmp_path / 'not-this.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "highseas", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout

    answer, _, after = out.partition("callback received")
    assert '"message": "号码导入任务信息请在回调中查收"' in answer
    callback, _, after_callback = after.partition("GET data.url")
    assert '"type": "api_customer_to_task"' in callback
    assert '"status": "success"' in callback
    assert "webhook-id: msg_" in callback
    downloaded = after_callback.splitlines()[0]
    assert "13012121212" in downloaded
    assert "state succeeded, delivery delivered" in out
    assert "demo finished" in out

    # Nothing was left in the working directory: no ./highseas.db, no ./.highseas.
    assert list(tmp_path.iterdir()) == []


def test_a_failing_step_exits_non_zero_and_says_which(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "SEED_MESSAGE", "not what the service answers")
    output = StringIO()
    assert demo.main(Console(file=output, soft_wrap=True)) == 1
    assert "demo failed: customer_to_task was not accepted" in output.getvalue()
