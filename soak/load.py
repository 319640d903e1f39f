"""Accounts for a soak run, and the load: pool imports and imports into tasks, at a fixed
concurrency, round-robin over the API processes, for a fixed time.

Every request and its answer is kept (``Sent``): what was accepted is what the checks expect
to find done.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from soak.fleet import HIGHSEAS
from soak.receiver import Receiver

ZONE = ZoneInfo("Asia/Shanghai")
WIRE_TIME = "%Y-%m-%d %H:%M:%S"
# Number blocks of the three big carriers, so operator filters select something.
BLOCKS = ("130", "131", "186", "133", "180", "189", "135", "138", "139", "150")
LEVELS = ("A", "B", "C", "D")
MAX_ROWS = 200
TIMEOUT_SECONDS = 30.0


@dataclass
class Account:
    """A user (main account) under an agent, with what the load needs of it."""

    agent: str
    token: str
    user_id: str
    level: str  # a text component's id
    age: str  # a number component's id
    sub_users: list[str]
    tasks: list[str]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Sent:
    """One request of the load and what became of it."""

    kind: str  # api_async_customer | api_customer_to_task (the batch type)
    account: Account
    body: dict[str, Any]
    task_id: str | None = None
    transport: str = "post"
    key: str | None = None
    expect_conflict: bool = False
    status: int | None = None
    reason: str | None = None
    unique_id: str | None = None
    at: float = 0.0  # time.monotonic() when sent
    latency: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.status == 200 and self.unique_id is not None


def create_agents(env: dict[str, str], names: Sequence[str]) -> dict[str, str]:
    """``highseas agent create`` for each name, at once; their tokens."""
    running = {
        name: subprocess.Popen(
            [*HIGHSEAS, "agent", "create", name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    }
    tokens = {}
    for name, process in running.items():
        out, err = process.communicate(timeout=120)
        if process.returncode != 0:
            raise RuntimeError(f"highseas agent create {name} failed: {err}")
        tokens[name] = str(json.loads(out.strip().splitlines()[-1])["token"])
    return tokens


async def create_accounts(
    base_url: str,
    tokens: dict[str, str],
    receiver: Receiver,
    *,
    users_per_agent: int,
    tasks_per_user: int,
) -> list[Account]:
    """Over HTTP: callback URLs (the receiver learns each agent's secret), then users with
    their components, sub-accounts and tasks, all users at once."""
    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_SECONDS) as client:

        async def call(token: str, path: str, body: object, method: str = "POST") -> Any:
            headers = {"Authorization": f"Bearer {token}"}
            answer = await client.request(method, path, json=body, headers=headers)
            if answer.status_code != 200:
                raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text}")
            return answer.json()["data"]

        async def account(agent: str, token: str, number: int) -> Account:
            user = await call(token, "/agent-api/user", {"name": f"{agent}-user{number}"})
            base = f"/agent-api/user/{user['id']}"
            level = await call(token, f"{base}/component", {"name": "等级", "type": "text"})
            age = await call(token, f"{base}/component", {"name": "年龄", "type": "number"})
            subs = [await call(token, f"{base}/subset_users", {"name": f"子{n}"}) for n in range(2)]
            tasks = [
                await call(token, f"{base}/task", {"name": f"任务{n}"})
                for n in range(tasks_per_user)
            ]
            return Account(
                agent=agent,
                token=token,
                user_id=user["id"],
                level=level["id"],
                age=age["id"],
                sub_users=[s["id"] for s in subs],
                tasks=[t["id"] for t in tasks],
            )

        for agent, token in tokens.items():
            for kind in ("api_customer_to_task", "api_async_customer"):
                url = f"/agent-api/callback/{kind}"
                hook = await call(token, url, {"url": receiver.url(agent)}, "PUT")
                receiver.secrets[agent] = hook["secret"]
        made = [
            account(agent, token, number)
            for agent, token in tokens.items()
            for number in range(users_per_agent)
        ]
        return list(await asyncio.gather(*made))


def phone_universe(rng: random.Random, size: int) -> list[str]:
    """The numbers every pool draws from: shared by all users and small enough that imports
    overlap (duplicates in the pool and in tasks are the point)."""
    numbers: set[str] = set()
    while len(numbers) < size:
        numbers.add(rng.choice(BLOCKS) + f"{rng.randrange(10**8):08d}")
    return sorted(numbers)


@dataclass
class Load:
    apis: list[str]
    accounts: list[Account]
    universe: list[str]
    concurrency: int
    rate: float
    seed: int
    sent: list[Sent] = field(default_factory=list)
    _next_slot: float = 0.0
    _keys: itertools.count[int] = field(default_factory=itertools.count)

    async def run(self, seconds: float) -> None:
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        clients = [
            httpx.AsyncClient(base_url=api, timeout=TIMEOUT_SECONDS, limits=limits)
            for api in self.apis
        ]
        try:
            turns = itertools.cycle(clients)
            deadline = time.monotonic() + seconds
            self._next_slot = time.monotonic()
            await asyncio.gather(
                *(
                    self._loop(random.Random(self.seed * 1000 + n), turns, deadline)
                    for n in range(self.concurrency)
                )
            )
        finally:
            for client in clients:
                await client.aclose()

    async def _loop(
        self, rng: random.Random, turns: itertools.cycle[httpx.AsyncClient], deadline: float
    ) -> None:
        while True:
            # Pacing shared by every slot: a fixed rate at most, whatever the latency.
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1 / self.rate
            if slot >= deadline:
                return
            await asyncio.sleep(slot - now)
            await self._one(rng, turns)

    async def _one(self, rng: random.Random, turns: itertools.cycle[httpx.AsyncClient]) -> None:
        accepted_keyed = [s for s in self.sent[-500:] if s.key and s.accepted]
        accepted_plain = [
            s
            for s in self.sent[-500:]
            if s.kind == "api_customer_to_task" and s.accepted and not s.key
        ]
        roll = rng.random()
        if roll < 0.35:
            await self._send(next(turns), self._pool_import(rng))
        elif roll < 0.43 and accepted_keyed:
            # The same key and request again, maybe by another transport: the same unique_id.
            earlier = rng.choice(accepted_keyed)
            again = self._import(earlier.account, earlier.task_id, earlier.body, rng, earlier.key)
            await self._send(next(turns), again)
        elif roll < 0.46:
            # Two requests with one new key at the same moment, on both API processes.
            first = self._import(*self._fresh(rng), rng, self._key())
            twin = self._import(first.account, first.task_id, first.body, rng, first.key)
            await asyncio.gather(self._send(next(turns), first), self._send(next(turns), twin))
        elif roll < 0.51 and accepted_plain:
            # The same request without a key: a new batch that finds every number there.
            earlier = rng.choice(accepted_plain)
            await self._send(
                next(turns), self._import(earlier.account, earlier.task_id, earlier.body, rng)
            )
        elif roll < 0.53 and accepted_keyed:
            earlier = rng.choice(accepted_keyed)
            other = {"phone": rng.choice(self.universe), "operator": [1, 2, 3]}
            conflict = self._import(earlier.account, earlier.task_id, other, rng, earlier.key)
            conflict.expect_conflict = True
            await self._send(next(turns), conflict)
        else:
            key = self._key() if rng.random() < 0.3 else None
            await self._send(next(turns), self._import(*self._fresh(rng), rng, key))

    def _key(self) -> str:
        return f"soak-{self.seed}-{next(self._keys)}"

    def _fresh(self, rng: random.Random) -> tuple[Account, str, dict[str, Any]]:
        account = rng.choice(self.accounts)
        return account, rng.choice(account.tasks), self._filter(rng, account)

    def _filter(self, rng: random.Random, account: Account) -> dict[str, Any]:  # noqa: PLR0911
        kind = rng.randrange(8)
        if kind <= 1:
            return {}
        if kind == 2:
            return {"components": [{"id": account.level, "value": rng.choice(LEVELS)}]}
        if kind == 3:
            low = rng.randint(20, 45)
            age = {"id": account.age, "op": "between", "value": [low, low + rng.randint(0, 15)]}
            return {"components": [age], "operator": rng.sample([1, 2, 3], rng.randint(1, 2))}
        if kind == 4:
            return {"operator": [rng.randint(1, 3)]}
        if kind == 5:
            return {"sub_user_id": rng.choice(account.sub_users)}
        if kind == 6:
            return {"phone": rng.choice(self.universe)}
        now = datetime.now(ZONE)
        window = [
            (now - timedelta(days=1)).strftime(WIRE_TIME),
            (now + timedelta(days=1)).strftime(WIRE_TIME),
        ]
        levels = rng.sample(LEVELS, 2)
        return {"components": [{"id": account.level, "value": levels}], "created_at": window}

    def _import(
        self,
        account: Account,
        task_id: str | None,
        body: dict[str, Any],
        rng: random.Random,
        key: str | None = None,
    ) -> Sent:
        transport = rng.choice(("post", "get", "query"))
        return Sent("api_customer_to_task", account, body, task_id, transport, key)

    def _pool_import(self, rng: random.Random) -> Sent:
        account = rng.choice(self.accounts)
        rows: list[dict[str, Any]] = []
        for index in range(rng.randint(20, MAX_ROWS)):
            if index and rng.random() < 0.05:
                rows.append(dict(rows[rng.randrange(index)]))  # repeated in the request
                continue
            row: dict[str, Any] = {"phone": rng.choice(self.universe), "name": f"客户{index}"}
            if rng.random() < 0.02:
                row["phone"] = "1234567"  # rejected, reported by row
            if rng.random() < 0.7:
                row["components"] = [
                    {"id": account.level, "value": rng.choice(LEVELS)},
                    {"id": account.age, "value": rng.randint(20, 60)},
                ]
            if rng.random() < 0.3:
                row["sub_user_id"] = rng.choice(account.sub_users)
            rows.append(row)
        return Sent("api_async_customer", account, {"data": rows})

    async def _send(self, client: httpx.AsyncClient, sent: Sent) -> None:
        self.sent.append(sent)
        user = f"/agent-api/user/{sent.account.user_id}"
        headers = dict(sent.account.headers)
        if sent.key is not None:
            headers["Idempotency-Key"] = sent.key
        sent.at = time.monotonic()
        started = time.perf_counter()
        try:
            if sent.kind == "api_async_customer":
                answer = await client.post(
                    f"{user}/async_customer", json=sent.body, headers=headers
                )
            else:
                url = f"{user}/customer_to_task/{sent.task_id}"
                if sent.transport == "query":
                    answer = await client.get(url, params=as_query(sent.body), headers=headers)
                else:
                    method = "POST" if sent.transport == "post" else "GET"
                    answer = await client.request(method, url, json=sent.body, headers=headers)
        except httpx.TransportError as exc:
            sent.latency = time.perf_counter() - started
            sent.reason = type(exc).__name__
            return
        sent.latency = time.perf_counter() - started
        sent.status = answer.status_code
        try:
            envelope = answer.json()
        except ValueError:
            envelope = {}
        if answer.status_code == 200:
            sent.unique_id = str(envelope["data"]["unique_id"])
        else:
            sent.reason = str(envelope.get("error", answer.text[:100]))


def as_query(body: dict[str, Any]) -> list[tuple[str, str | int | float | bool | None]]:
    """The filter in a query string: arrays as JSON text, operators as repeated keys."""
    query: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in body.items():
        if name == "operator":
            query += [(name, str(v)) for v in value]
        elif isinstance(value, list):
            query.append((name, json.dumps(value, ensure_ascii=False)))
        else:
            query.append((name, str(value)))
    return query
