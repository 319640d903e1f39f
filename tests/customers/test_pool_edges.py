"""Pool rows at the edges: a `created_at` range is inclusive to the second, whichever way the
customer came in; a file's cells that no database could store do not break the pool; a file
carries a ``sometimes|required`` component when it has its column."""

from __future__ import annotations

import csv
from pathlib import Path

import httpx

from highseas.components import service as components
from highseas.components.schemas import ComponentCreate
from highseas.customers import pool_import
from highseas.customers.files import PoolFile
from highseas.db import Database
from tests.fixtures.factories import make_agent, make_user

SECONDS = ["2026-05-01 10:00:00", "2026-05-01 10:00:01", "2026-05-01 10:00:02"]


async def test_a_one_second_range_finds_and_deletes_exactly_that_second(
    client: httpx.AsyncClient, db: Database, tmp_path: Path
) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    migrated = tmp_path / "pool.csv"
    lines = ["phone,created_at", *(f"1310000000{i},{at}" for i, at in enumerate(SECONDS))]
    lines.append("13100000009,0001-01-01 00:00:00")  # before year 1 in UTC: a bad row, no crash
    migrated.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = await pool_import.import_file(db, str(user.id), PoolFile(migrated))
    assert (summary.created, summary.rejected) == (3, 1)

    base = f"/agent-api/user/{user.id}"
    middle = {"created_at": [SECONDS[1], SECONDS[1]]}
    found = await client.request("GET", f"{base}/get_customer", json=middle, headers=agent.headers)
    assert found.status_code == 200, found.text
    assert [row["phone"] for row in found.json()["data"]] == ["13100000001"]
    edges = {"created_at": [SECONDS[0], SECONDS[2]]}
    found = await client.request("GET", f"{base}/get_customer", json=edges, headers=agent.headers)
    assert found.json()["meta"]["total"] == 3

    deleted = await client.request(
        "DELETE", f"{base}/del_customer", json=middle, headers=agent.headers
    )
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["data"]["deleted"] == 1
    left = await client.request("GET", f"{base}/get_customer", json={}, headers=agent.headers)
    assert sorted(row["phone"] for row in left.json()["data"]) == ["13100000000", "13100000002"]


async def test_extra_cells_no_database_could_store_are_text_or_rejected(
    client: httpx.AsyncClient, db: Database, tmp_path: Path
) -> None:
    """What the request parser refuses stays the cell's text; a NUL rejects its row. The pool
    reads back afterwards (it answered 500 for such rows before)."""
    agent = await make_agent(db)
    user = await make_user(db, agent)
    deep = "[" * 300 + "]" * 300
    path = tmp_path / "extra.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "extra"])
        writer.writerow(["13100000001", '{"a": "\\ud800"}'])  # a lone surrogate escape
        writer.writerow(["13100000002", deep])
        writer.writerow(["13100000003", '{"a": "x\\u0000y"}'])  # a NUL, escaped in JSON
        writer.writerow(["13100000004", '{"a": [1, 2]}'])
    summary = await pool_import.import_file(db, str(user.id), PoolFile(path))
    assert (summary.created, summary.rejected) == (3, 1)
    listed = await client.request(
        "GET", f"/agent-api/user/{user.id}/get_customer", json={}, headers=agent.headers
    )
    assert listed.status_code == 200, listed.text
    extras = {row["phone"]: row["extra"] for row in listed.json()["data"]}
    assert extras == {
        "13100000001": '{"a": "\\ud800"}',
        "13100000002": deep,
        "13100000004": {"a": [1, 2]},
    }


async def test_a_file_carries_a_sometimes_required_component_when_it_has_its_column(
    db: Database, tmp_path: Path
) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    async with db.transaction() as session:
        rules = ["sometimes", "required"]
        await components.create(
            session, user, ComponentCreate(name="行业", type="text", validate=rules)
        )
    without = tmp_path / "without.csv"
    without.write_text("phone\n13100000001\n", encoding="utf-8")
    with_column = tmp_path / "with.csv"
    with_column.write_text("phone,行业\n13100000002,教育\n13100000003,\n", encoding="utf-8")

    left_out = await pool_import.import_file(db, str(user.id), PoolFile(without))
    assert (left_out.created, left_out.rejected) == (1, 0)
    given = await pool_import.import_file(db, str(user.id), PoolFile(with_column))
    assert (given.created, given.rejected) == (1, 1)
    rejected = (tmp_path / "with.csv.rejected.csv").read_text(encoding="utf-8-sig")
    assert rejected.splitlines()[1] == "1,13100000003,,行业: required"
