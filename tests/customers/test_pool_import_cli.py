"""`highseas pool import` as a user runs it: a real process on a real file and database."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import uuid
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook

from highseas.components import service as components
from highseas.components.schemas import ComponentCreate
from highseas.customers import pool_import, service
from highseas.customers.files import PoolFile
from highseas.db import Database
from highseas.models import User
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
        ("2", "phone: duplicate"),  # not stored either, so listed with the rejected rows
        ("3", "phone: invalid_phone"),
        ("4", "行业: required"),
        ("5", "年龄: not_number"),
        ("6", "created_at: invalid_time"),
    ]
    assert rejected[2][1:-1] == ROWS[3]  # the row as it was in the file

    pool = await _pool(client, agent, user_id)
    assert set(pool) == {"13800000001", "13800000002"}
    first = pool["13800000001"]
    assert first["created_at"] == "2021-06-30 13:20:28"  # migrated as given
    assert {c["name"]: c["value"] for c in first["components"]} == {"行业": "教育", "年龄": 30}

    again = run_import(env, str(path), "--user", user_id)
    assert json.loads(again.stdout.strip().splitlines()[-1])["duplicates"] == 3
    text = Path(rejected_file).read_text(encoding="utf-8-sig")
    reasons = [r[-1] for r in list(csv.reader(text.splitlines()))[1:4]]
    assert reasons == ["phone: duplicate"] * 3  # rows 0 and 1 are now in the pool
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
    [
        ("name,行业\n张三,教育\n", "phone"),
        ("phone,颜色\n13800000001,红\n", "颜色"),
        ("phone, 颜色 \n13800000001,红\n", "未知的列：「 颜色 」"),  # spaces shown
        ("", "空"),
        ("phone,name,phone\n13800000001,张三,13800000002\n", "第 1 列「phone」和第 3 列「phone」"),
        ("phone,行业,行业 \n13800000001,教育,金融\n", "第 2 列「行业」和第 3 列「行业 」"),
    ],
)
async def test_unusable_files_exit_2(
    env: dict[str, str],
    owner: tuple[AgentWithToken, str],
    client: httpx.AsyncClient,
    tmp_path: Path,
    content: str,
    message: str,
) -> None:
    agent, user_id = owner
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    done = run_import(env, str(path), "--user", user_id)
    assert done.returncode == 2
    assert message in done.stderr
    assert await _pool(client, agent, user_id) == {}


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
    assert "importing" not in unknown.stderr  # no progress bar for an import that never began


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
    assert progress == [0, 2, 2, 2, 1]  # 0: the file and the user passed their checks
    text = Path(str(summary.rejected_file)).read_text(encoding="utf-8-sig")
    assert [r[0] for r in list(csv.reader(text.splitlines()))[1:]] == ["2", "3", "4", "5", "6"]


async def test_an_unwritable_rejected_file_stops_the_import_before_anything_is_stored(
    env: dict[str, str],
    owner: tuple[AgentWithToken, str],
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    agent, user_id = owner
    path = tmp_path / "pool.csv"
    _write_csv(path, ROWS, "utf-8")
    (tmp_path / "pool.csv.rejected.csv").mkdir()
    done = run_import(env, str(path), "--user", user_id)
    assert done.returncode == 2
    assert f"highseas: 无法写入 {path}.rejected.csv" in done.stderr
    assert "Traceback" not in done.stderr
    assert await _pool(client, agent, user_id) == {}


async def test_blank_rows_are_skipped_and_keep_their_number(
    env: dict[str, str],
    owner: tuple[AgentWithToken, str],
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    agent, user_id = owner
    path = tmp_path / "pool.csv"
    _write_csv(path, [ROWS[0], [], [" ", "", "", "", ""], ROWS[3]], "utf-8")
    done = run_import(env, str(path), "--user", user_id)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["created"], summary["rejected"]) == (1, 1)
    rejected = list(csv.reader(Path(summary["rejected_file"]).read_text("utf-8-sig").splitlines()))
    assert rejected[1] == ["3", *ROWS[3], "phone: invalid_phone"]  # the file's 5th line
    assert set(await _pool(client, agent, user_id)) == {"13800000001"}


async def test_the_reason_stays_under_its_header(
    env: dict[str, str],
    owner: tuple[AgentWithToken, str],
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    agent, user_id = owner
    path = tmp_path / "pool.csv"
    rows = [
        ["12345"],  # short
        ["13800000009", "张三", "", "教育", "1", "海淀区"],  # a cell past the header
        ["13800000010", "李四", "", "教育", "2", "", " "],  # only empty cells past it
    ]
    _write_csv(path, rows, "utf-8")
    done = run_import(env, str(path), "--user", user_id)
    assert done.returncode == 0, done.stderr
    rejected = list(csv.reader(Path(f"{path}.rejected.csv").read_text("utf-8-sig").splitlines()))
    assert rejected == [
        ["row", *HEADER, "reason"],
        ["0", "12345", "", "", "", "", "phone: invalid_phone; 行业: required"],
        ["1", *rows[1][:5], "row: too_many_cells", "海淀区"],
    ]
    assert set(await _pool(client, agent, user_id)) == {"13800000010"}


async def test_every_row_not_stored_is_listed_past_the_api_error_limit(
    db: Database, owner: tuple[AgentWithToken, str], tmp_path: Path
) -> None:
    _, user_id = owner
    path = tmp_path / "pool.csv"
    count = service.MAX_LISTED_ERRORS + 200
    _write_csv(path, [["13800000001", "", "", "教育", ""]] * count, "utf-8")
    summary = await pool_import.import_file(db, user_id, PoolFile(path))
    assert (summary.created, summary.duplicates, summary.rejected) == (1, count - 1, 0)
    text = Path(str(summary.rejected_file)).read_text(encoding="utf-8-sig")
    listed = list(csv.reader(text.splitlines()))[1:]
    assert [(r[0], r[-1]) for r in listed] == [
        (str(n), "phone: duplicate") for n in range(1, count)
    ]


async def _add_component(
    db: Database, user_id: str, name: str, kind: str, *, stored_as: str | None = None
) -> None:
    """A component of the user, made by the service; ``stored_as``: its name as stored."""
    async with db.transaction() as session:
        user = await session.get(User, uuid.UUID(user_id))
        assert user is not None
        component = await components.create(session, user, ComponentCreate(name=name, type=kind))
        if stored_as is not None:
            component.name = stored_as


async def test_header_cells_match_names_as_written_then_trimmed(
    env: dict[str, str],
    owner: tuple[AgentWithToken, str],
    db: Database,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    agent, user_id = owner
    # As stored before component names were trimmed.
    await _add_component(db, user_id, "地区", "text", stored_as=" 地区")
    path = tmp_path / "pool.csv"
    path.write_text("phone, 行业 , 地区\n13800000001,教育,海淀\n", encoding="utf-8")
    done = run_import(env, str(path), "--user", user_id)
    assert done.returncode == 0, done.stderr
    customer = (await _pool(client, agent, user_id))["13800000001"]
    assert {c["name"]: c["value"] for c in customer["components"]} == {
        "行业": "教育",
        " 地区": "海淀",
    }


async def test_extra_cells(
    env: dict[str, str],
    owner: tuple[AgentWithToken, str],
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    agent, user_id = owner
    given = {
        "13800000001": ('{"vip": true}', {"vip": True}),
        "13800000002": ("[1, 2]", [1, 2]),
        "13800000003": ("", None),
        "13800000004": (" 老客户 ", "老客户"),
        "13800000005": ("{broken", "{broken"),
        "13800000006": ("7", "7"),  # only an object or array is read as JSON
    }
    path = tmp_path / "pool.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "行业", "extra"])
        writer.writerows([phone, "教育", cell] for phone, (cell, _) in given.items())
    done = run_import(env, str(path), "--user", user_id)
    assert done.returncode == 0, done.stderr
    pool = await _pool(client, agent, user_id)
    assert {phone: row["extra"] for phone, row in pool.items()} == {
        phone: stored for phone, (_, stored) in given.items()
    }


async def test_xlsx_dates_are_read_as_shown(
    env: dict[str, str],
    owner: tuple[AgentWithToken, str],
    db: Database,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    agent, user_id = owner
    await _add_component(db, user_id, "生日", "date")
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["phone", "行业", "生日", "created_at"])
    sheet.append([13800000001, "教育", date(1990, 1, 1), datetime(2021, 6, 30)])
    workbook.save(tmp_path / "pool.xlsx")
    done = run_import(env, str(tmp_path / "pool.xlsx"), "--user", user_id)
    assert done.returncode == 0, done.stderr
    customer = (await _pool(client, agent, user_id))["13800000001"]
    assert {c["name"]: c["value"] for c in customer["components"]}["生日"] == "1990-01-01"
    assert customer["created_at"] == "2021-06-30 00:00:00"  # a time shown, even midnight
