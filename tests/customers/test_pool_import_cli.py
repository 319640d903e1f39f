"""`highseas pool import` as a user runs it: a real process on a real file and database."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook

from highseas.components import service as components
from highseas.components.schemas import ComponentCreate
from highseas.customers import pool_import
from highseas.customers.files import PoolFile
from highseas.db import Database
from tests.fixtures.factories import AgentWithToken, make_agent, make_user

pytestmark = pytest.mark.slow

HEADER = ["phone", "name", "created_at", "行业", "年龄"]


def run_import(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "highseas", "pool", "import", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HIGHSEAS_DATABASE_URL": database_url,
        "HIGHSEAS_DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
async def owner(db: Database) -> tuple[AgentWithToken, str]:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    async with db.transaction() as session:
        await components.create(
            session, user, ComponentCreate(name="行业", type="text", validate=["required"])
        )
        await components.create(session, user, ComponentCreate(name="年龄", type="number"))
    return agent, str(user.id)


ROWS = [
    ["13800000001", "张三", "2021-06-30 13:20:28", "教育", "30"],
    ["+86 138-0000-0002", "李四", "", "金融", ""],
    ["13800000001", "重复", "", "教育", "31"],  # duplicate of row 0
    ["12345", "坏号码", "", "教育", "1"],  # invalid phone
    ["13800000003", "缺行业", "", "", "1"],  # required component
    ["13800000004", "坏年龄", "", "教育", "abc"],  # not a number
    ["13800000005", "坏时间", "2021-06-30", "教育", "1"],  # created_at format
]


def _write_csv(path: Path, rows: list[list[str]], encoding: str) -> None:
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)


async def _pool(client: httpx.AsyncClient, agent: AgentWithToken, user_id: str) -> dict[str, dict]:
    response = await client.get(
        f"/agent-api/user/{user_id}/get_customer", params={"per_page": 100}, headers=agent.headers
    )
    return {row["phone"]: row for row in response.json()["data"]}


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8"])
async def test_csv_import(
    env: dict[str, str],
    owner: tuple[AgentWithToken, str],
    client: httpx.AsyncClient,
    tmp_path: Path,
    encoding: str,
) -> None:
    agent, user_id = owner
    path = tmp_path / "pool.csv"
    _write_csv(path, ROWS, encoding)
    done = run_import(env, str(path), "--user", user_id)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    rejected_file = str(tmp_path / "pool.csv.rejected.csv")
    assert summary == {"created": 2, "duplicates": 1, "rejected": 4, "rejected_file": rejected_file}
    text = Path(rejected_file).read_text(encoding="utf-8-sig")
    rejected = list(csv.reader(text.splitlines()))
    assert rejected[0] == ["row", *HEADER, "reason"]
    assert [(r[0], r[-1]) for r in rejected[1:]] == [
        ("3", "phone: invalid_phone"),
        ("4", "行业: required"),
        ("5", "年龄: not_number"),
        ("6", "created_at: invalid_time"),
    ]
    assert rejected[1][1:-1] == ROWS[3]  # the row as it was in the file

    pool = await _pool(client, agent, user_id)
    assert set(pool) == {"13800000001", "13800000002"}
    first = pool["13800000001"]
    assert first["created_at"] == "2021-06-30 13:20:28"  # migrated as given
    assert {c["name"]: c["value"] for c in first["components"]} == {"行业": "教育", "年龄": 30}

    again = run_import(env, str(path), "--user", user_id)
    assert json.loads(again.stdout.strip().splitlines()[-1])["duplicates"] == 3
    assert len(await _pool(client, agent, user_id)) == 2


async def test_gbk_needs_the_flag(
    env: dict[str, str],
    owner: tuple[AgentWithToken, str],
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    agent, user_id = owner
    path = tmp_path / "gbk.csv"
    _write_csv(path, ROWS[:2], "gbk")
    refused = run_import(env, str(path), "--user", user_id)
    assert refused.returncode == 2
    assert "--encoding gbk" in refused.stderr
    assert await _pool(client, agent, user_id) == {}  # nothing stored from a misread file

    done = run_import(env, str(path), "--user", user_id, "--encoding", "gbk")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary == {"created": 2, "duplicates": 0, "rejected": 0, "rejected_file": None}
    assert not (tmp_path / "gbk.csv.rejected.csv").exists()
    pool = await _pool(client, agent, user_id)
    assert pool["13800000001"]["name"] == "张三"


async def test_xlsx_import(
    env: dict[str, str],
    owner: tuple[AgentWithToken, str],
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    agent, user_id = owner
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append([13800000001, "张三", None, "教育", 30])  # numbers as spreadsheets store them
    sheet.append(["13800000002", "李四", "2021-06-30 13:20:28", "金融", 41.0])
    path = tmp_path / "pool.xlsx"
    workbook.save(path)
    done = run_import(env, str(path), "--user", user_id)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["created"] == 2
    pool = await _pool(client, agent, user_id)
    assert {c["name"]: c["value"] for c in pool["13800000002"]["components"]}["年龄"] == 41


@pytest.mark.parametrize(
    ("content", "message"),
    [("name,行业\n张三,教育\n", "phone"), ("phone,颜色\n13800000001,红\n", "颜色"), ("", "空")],
)
def test_unusable_files_exit_2(
    env: dict[str, str],
    owner: tuple[AgentWithToken, str],
    tmp_path: Path,
    content: str,
    message: str,
) -> None:
    _, user_id = owner
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    done = run_import(env, str(path), "--user", user_id)
    assert done.returncode == 2
    assert message in done.stderr


def test_missing_file_and_unknown_user(
    env: dict[str, str], owner: tuple[AgentWithToken, str], tmp_path: Path
) -> None:
    _, user_id = owner
    assert run_import(env, str(tmp_path / "none.csv"), "--user", user_id).returncode == 2
    path = tmp_path / "ok.csv"
    _write_csv(path, ROWS[:1], "utf-8")
    unknown = run_import(env, str(path), "--user", "3f0b7c1e-0000-4000-8000-000000000000")
    assert unknown.returncode == 1
    assert "3f0b7c1e-0000-4000-8000-000000000000" in unknown.stderr


async def test_a_repeat_in_a_later_chunk_is_found_by_the_pool(
    db: Database,
    owner: tuple[AgentWithToken, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two rows per chunk: the repeat of row 0 (row 2) is in the next chunk, so the pool's
    # unique key, not the chunk's own check, finds it.
    monkeypatch.setattr(pool_import, "CHUNK_ROWS", 2)
    _, user_id = owner
    path = tmp_path / "pool.csv"
    _write_csv(path, ROWS, "utf-8")
    progress: list[int] = []
    pool_file = PoolFile(path)
    summary = await pool_import.import_file(db, user_id, pool_file, on_progress=progress.append)
    assert (summary.created, summary.duplicates, summary.rejected) == (2, 1, 4)
    assert progress == [2, 2, 2, 1]
    text = Path(str(summary.rejected_file)).read_text(encoding="utf-8-sig")
    assert [r[0] for r in list(csv.reader(text.splitlines()))[1:]] == ["3", "4", "5", "6"]
