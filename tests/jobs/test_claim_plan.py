"""A claim reads the ready jobs only: finished ones, however many, are never scanned."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.dialects import sqlite

from highseas.jobs.queue import _CLAIM
from highseas.migrate import upgrade


def test_the_claim_seeks_each_ready_state_in_the_claim_index(tmp_path: Path) -> None:
    path = tmp_path / "plan.db"
    upgrade(f"sqlite:///{path}")
    sql = str(_CLAIM.compile(dialect=sqlite.dialect())).replace("__[POSTCOMPILE_of_kinds]", "?")
    with sqlite3.connect(path) as connection:
        plan = [
            row[3]
            for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", ["x"] * sql.count("?"))
        ]
    searches = [step for step in plan if step.startswith("SEARCH candidate")]
    assert len(searches) == 2, plan
    assert all("ix_jobs_claim (queue=? AND state=?" in step for step in searches), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
