"""An agent with a callback receiver, a user with components, a pool and a task."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from highseas.config import Settings
from highseas.customers.files import PoolFile
from highseas.customers.pool_import import import_file
from highseas.db import Database
from highseas.jobs import Queue
from tests.fixtures.factories import AgentWithToken, make_agent, make_user, run_jobs
from tests.fixtures.receiver import Receiver


@dataclass
class Scenario:
    agent: AgentWithToken
    user_id: str
    base: str
    task_id: str
    components: dict[str, str]
    secret: str

    def url(self, task_id: str | None = None) -> str:
        return f"{self.base}/customer_to_task/{task_id or self.task_id}"


async def make_scenario(
    client: httpx.AsyncClient,
    db: Database,
    receiver: Receiver | None,
    tmp_path: Path,
    rows: list[dict[str, Any]],
) -> Scenario:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"
    secret = ""
    if receiver is not None:
        configured = await client.put(
            "/agent-api/callback/api_customer_to_task",
            json={"url": receiver.url()},
            headers=agent.headers,
        )
        secret = configured.json()["data"]["secret"]
    components = {}
    for name, kind in (("公司", "text"), ("年龄", "number"), ("签约日期", "date")):
        created = await client.post(
            f"{base}/component", json={"name": name, "type": kind}, headers=agent.headers
        )
        components[name] = created.json()["data"]["id"]
    task = await client.post(f"{base}/task", json={"name": "外呼任务"}, headers=agent.headers)
    assert task.status_code == 200, task.text
    if rows:
        await load_pool(db, str(user.id), tmp_path, rows)
    return Scenario(agent, str(user.id), base, task.json()["data"]["id"], components, secret)


async def load_pool(db: Database, user_id: str, tmp_path: Path, rows: list[dict[str, Any]]) -> None:
    """Through the real `pool import` code (it is the path that can set created_at)."""
    header = ["phone", "operator", "created_at", "公司", "年龄", "签约日期"]
    path = tmp_path / f"pool-{uuid.uuid4().hex}.csv"
    lines = [",".join(header)]
    lines += [",".join(str(row.get(column, "")) for column in header) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = await import_file(db, user_id, PoolFile(path))
    assert summary.rejected == 0, summary


async def finish(db: Database, settings: Settings) -> None:
    """Run the imports, then deliver their callbacks."""
    await run_jobs(db, settings, Queue.IMPORTS)
    await run_jobs(db, settings, Queue.CALLBACKS)


def callbacks_of(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received]
