"""A 60-row pool of mixed carriers with three components, and what each row holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from highseas.config import Settings
from highseas.db import Database
from tests.fixtures.factories import make_agent, make_user, run_jobs

# Real allocations (phonenumbers): operator code per 3-digit block.
BLOCKS = {"133": 1, "153": 1, "130": 2, "186": 2, "138": 3, "150": 3, "192": 4}
COMPANIES = ["腾讯", "阿里巴巴", "百度"]


@dataclass
class Pool:
    headers: dict[str, str]
    base: str
    user_id: str
    components: dict[str, str]  # name → id
    rows: list[dict[str, Any]]  # what was sent, with "operator" added


def pool_rows(count: int = 60) -> list[dict[str, Any]]:
    rows = []
    blocks = list(BLOCKS)
    for i in range(count):
        block = blocks[i % len(blocks)]
        rows.append(
            {
                "phone": f"{block}{i:08d}",
                "name": f"客户{i}",
                "email": f"c{i}@example.com",
                "company": f"公司{i % 4}",
                "company_component": COMPANIES[i % 3],
                "age": 20 + i % 30,
                "signed": f"2024-03-{1 + i % 10:02d}",
                "operator": BLOCKS[block],
            }
        )
    return rows


async def make_pool(client: httpx.AsyncClient, db: Database, settings: Settings) -> Pool:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"
    components = {}
    for name, kind in (("公司名称", "text"), ("年龄", "number"), ("签约日期", "date")):
        response = await client.post(
            f"{base}/component", json={"name": name, "type": kind}, headers=agent.headers
        )
        components[name] = response.json()["data"]["id"]
    rows = pool_rows()
    for start in range(0, len(rows), 25):
        data = [
            {
                "phone": r["phone"],
                "name": r["name"],
                "email": r["email"],
                "company": r["company"],
                "components": [
                    {"id": components["公司名称"], "value": r["company_component"]},
                    {"id": components["年龄"], "value": r["age"]},
                    {"id": components["签约日期"], "value": r["signed"]},
                ],
            }
            for r in rows[start : start + 25]
        ]
        accepted = await client.post(
            f"{base}/async_customer", json={"data": data}, headers=agent.headers
        )
        assert accepted.status_code == 200, accepted.text
    await run_jobs(db, settings)
    return Pool(agent.headers, base, str(user.id), components, rows)
