"""``highseas demo``: a newcomer's first five minutes, offline, on a throwaway database.

Starts the real service (API and in-process worker) and a local callback receiver, builds an
account over HTTP, loads 1,000 pool customers through the ``pool import`` code, sends the seed
page's request example (客户公海筛选进入任务) and follows it to the callback and the download.
Everything lives in a temporary directory: ``./highseas.db`` and ``./.highseas`` stay untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import json
import queue
import random
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from rich.console import Console
from rich.markup import escape

from highseas import phones
from highseas.agents import service as agents
from highseas.config import Environment, Settings
from highseas.customers.files import PoolFile, UnreadableFile
from highseas.customers.pool_import import Summary, import_file
from highseas.db import Database
from highseas.errors import HighseasError
from highseas.main import create_app
from highseas.migrate import upgrade
from highseas.phones import Operator

T = TypeVar("T")

SEED_PHONE = "13012121212"
WINDOW = ("2021-06-30 13:20:28", "2021-06-30 13:25:28")
SEED_MESSAGE = "号码导入任务信息请在回调中查收"
POOL_SIZE = 1000
MATCHING = 40  # 腾讯 + 电信 + created inside WINDOW, SEED_PHONE among them
NEAR_MISSES = 20  # inside WINDOW, but another company or carrier
CALLBACK_WAIT_SECONDS = 30.0
COMPONENTS = {"公司": "text", "年龄": "number", "签约日期": "date"}
COMPANIES = ("阿里巴巴", "字节跳动", "美团", "京东", "网易", "百度")
# A few number blocks per carrier; every generated number is still checked with phones.parse,
# so a block the phone library does not know is simply skipped.
BLOCKS: dict[Operator, tuple[str, ...]] = {
    Operator.TELECOM: ("133", "153", "173", "180", "189", "199"),
    Operator.UNICOM: ("131", "132", "155", "156", "186"),
    Operator.MOBILE: ("135", "138", "139", "150", "158", "188"),
    Operator.BROADNET: ("192",),
}
# Roughly the market's shares, so the pool looks like a real one.
CARRIER_SHARE = {
    Operator.MOBILE: 55,
    Operator.TELECOM: 20,
    Operator.UNICOM: 20,
    Operator.BROADNET: 5,
}
CSV_COLUMNS = ("phone", "name", "operator", "created_at", *COMPONENTS)


class DemoFailed(Exception):
    """A step of the demo went wrong; the message says which step and why."""


def main(console: Console | None = None) -> int:
    """Run the demo; the exit code: 0 when every step worked."""
    # soft_wrap keeps long lines (URLs, curl commands) whole, so they can be copied.
    console = console or Console(soft_wrap=True, highlight=False)
    started = time.monotonic()
    try:
        run(console)
    except DemoFailed as exc:
        console.print(f"\n[bold red]demo failed:[/] {escape(str(exc))}")
        return 1
    except (httpx.HTTPError, OSError) as exc:
        # Local sockets and files only: these mean the machine refused, not a highseas bug.
        console.print(f"\n[bold red]demo failed:[/] {escape(f'{type(exc).__name__}: {exc}')}")
        return 1
    except KeyboardInterrupt:
        console.print("\n[yellow]demo interrupted[/]")
        return 130
    console.print(f"[green]demo finished in {time.monotonic() - started:.1f} s[/]")
    return 0


def run(console: Console) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="highseas-demo-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        _step(console, 1, "start the service and a callback receiver")
        receiver = stack.enter_context(CallbackReceiver(console).running())
        # Entered after the receiver, so it stops first: no callback is sent to a closed port.
        service = stack.enter_context(running_service(workdir))
        console.print(f"service   {service.base_url}  (API docs: {service.base_url}/docs)")
        console.print(f"database  {escape(service.settings.database_url)}  (fresh, temporary)")
        console.print(f"receiver  {receiver.url}")

        _step(console, 2, "an agent, a user, components, the callback URL, a task")
        token = create_agent(service.settings)
        console.print(f"agent     demo-agency, token {token[:10]}…  (shown once; stored hashed)")
        with httpx.Client(
            base_url=service.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ) as api:
            account = set_up_account(console, api, receiver.url)

            _step(console, 3, f"{POOL_SIZE:,} customers into the pool with `highseas pool import`")
            load_pool(console, service.settings, account, workdir / "demo-pool.csv")

            _step(console, 4, "the seed page's request example: 客户公海筛选进入任务")
            unique_id = send_seed_example(console, api, account)

            _step(console, 5, "the callback, the download, the identification view")
            callback = await_callback(console, receiver, unique_id)
            show_download(console, callback)
            show_identification(console, api, account, unique_id)

        _step(console, 6, "next steps")
        console.print(next_steps())
        console.print("shutting down the service and the receiver…")


def _step(console: Console, number: int, title: str) -> None:
    console.print()
    console.rule(f"[bold cyan]{number}. {escape(title)}", align="left")


# --- 1. the service and the receiver ---------------------------------------------------------


@dataclass(frozen=True)
class Service:
    settings: Settings
    base_url: str


@contextlib.contextmanager
def running_service(workdir: Path) -> Iterator[Service]:
    """``create_app`` with its worker, served by uvicorn in a thread on a free local port."""
    # uvicorn serves this very socket, so no other process can take the port in between.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    base_url = f"http://127.0.0.1:{port}"
    settings = Settings(
        env=Environment.DEVELOPMENT,
        database_url=f"sqlite:///{workdir / 'demo.db'}",
        data_dir=workdir / "data",
        host="127.0.0.1",
        port=port,
        public_url=base_url,
        callback_allow_private=True,  # the receiver is on 127.0.0.1
        job_poll_seconds=0.1,
        callback_retry_schedule=[1, 2, 5],
    )
    upgrade(settings.database_url)
    config = uvicorn.Config(
        create_app(settings, run_worker=True), log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="highseas-demo-server", daemon=True
    )
    thread.start()
    try:
        _wait_for(lambda: server.started or not thread.is_alive(), timeout=15)
        if not server.started:
            raise DemoFailed(f"the service did not start on {base_url}")
        yield Service(settings, base_url)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _wait_for(condition: Callable[[], bool], *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


class CallbackReceiver:
    """A tiny HTTP server on 127.0.0.1 that answers 200, prints a line and keeps each POST."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.deliveries: queue.Queue[Delivery] = queue.Queue()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _receiver_handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    @contextlib.contextmanager
    def running(self) -> Iterator[CallbackReceiver]:
        thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="highseas-demo-receiver",
            daemon=True,
        )
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)

    def receive(self, delivery: Delivery) -> None:
        # Printed before the hand-over, so this line comes before the demo's view of it.
        self.console.print(
            f"[dim]receiver ← POST {escape(delivery.path)} ({len(delivery.body)} bytes), "
            "answering 200[/]"
        )
        self.deliveries.put(delivery)


def _receiver_handler(receiver: CallbackReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {key.lower(): value for key, value in self.headers.items()}
            receiver.receive(Delivery(self.path, headers, body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            return  # the receiver prints its own line

    return Handler


# --- 2. the account ------------------------------------------------------------------------


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        database = Database(settings.database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


def create_agent(settings: Settings) -> str:
    """The agent and its token, through the same service ``highseas agent create`` uses."""

    async def work(database: Database) -> str:
        async with database.transaction() as session:
            _agent, issued = await agents.create_agent(session, "demo-agency")
            return issued.token

    return _with_database(settings, work)


@dataclass(frozen=True)
class Account:
    user_id: str
    task_id: str
    components: dict[str, str]

    @property
    def base(self) -> str:
        return f"/agent-api/user/{self.user_id}"


def call(api: httpx.Client, method: str, path: str, body: object = None) -> Any:
    """``data`` of a success envelope; anything else stops the demo with the server's words."""
    response = api.request(method, path, json=body)
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code != 200 or answer.get("status") != "success":
        reason = answer.get("message") or response.text[:200]
        raise DemoFailed(f"{method} {path} answered HTTP {response.status_code}: {reason}")
    return answer["data"]


def set_up_account(console: Console, api: httpx.Client, callback_url: str) -> Account:
    user = call(api, "POST", "/agent-api/user", {"name": "演示主账号"})
    console.print(f"POST /agent-api/user → user {user['id']}")
    base = f"/agent-api/user/{user['id']}"
    components = {}
    for name, kind in COMPONENTS.items():
        created = call(api, "POST", f"{base}/component", {"name": name, "type": kind})
        components[name] = created["id"]
        console.print(f"POST …/component → {name} ({kind}) {created['id']}")
    hook = call(api, "PUT", "/agent-api/callback/api_customer_to_task", {"url": callback_url})
    console.print(
        f"PUT /agent-api/callback/api_customer_to_task → {hook['url']} "
        f"(signing secret {hook['secret'][:12]}…)"
    )
    task = call(api, "POST", f"{base}/task", {"name": "演示外呼任务"})
    console.print(f"POST …/task → task {task['id']} ({task['name']})")
    return Account(user_id=user["id"], task_id=task["id"], components=components)


# --- 3. the pool ---------------------------------------------------------------------------


def pool_rows(seed: int = 20210630) -> list[dict[str, str]]:
    """``POOL_SIZE`` rows: ``MATCHING`` fit every filter of the seed example except the phone,
    ``NEAR_MISSES`` are in its time window but miss one filter, the rest are outside it."""
    rng = random.Random(seed)  # noqa: S311 -- not a secret: the same sample pool on every run
    start = datetime.strptime(WINDOW[0], "%Y-%m-%d %H:%M:%S")
    taken = {SEED_PHONE}
    # A Unicom block by allocation, ported to Telecom: only the operator column can say so.
    rows = [_row(0, SEED_PHONE, start + timedelta(seconds=32), "腾讯", rng, operator="1")]

    def add(carrier: Operator, created: datetime, company: str) -> None:
        rows.append(_row(len(rows), _number(rng, carrier, taken), created, company, rng))

    def in_window() -> datetime:
        return start + timedelta(seconds=rng.randint(0, 300))

    while len(rows) < MATCHING:
        add(Operator.TELECOM, in_window(), "腾讯")
    for miss in range(NEAR_MISSES):
        if miss % 2:
            add(Operator.TELECOM, in_window(), rng.choice(COMPANIES))
        else:
            add(rng.choice([Operator.UNICOM, Operator.MOBILE]), in_window(), "腾讯")
    carriers, weights = list(CARRIER_SHARE), list(CARRIER_SHARE.values())
    while len(rows) < POOL_SIZE:
        # Never inside the window, so what is in it is exactly the rows chosen above.
        created = start + timedelta(seconds=rng.choice([-1, 1]) * rng.randint(600, 2 * 86_400))
        [carrier] = rng.choices(carriers, weights)
        add(carrier, created, rng.choice([*COMPANIES, "腾讯"]))
    return rows


def _row(
    index: int,
    phone: str,
    created: datetime,
    company: str,
    rng: random.Random,
    *,
    operator: str = "",
) -> dict[str, str]:
    signed = date(2021, 1, 1) + timedelta(days=rng.randrange(180))
    return {
        "phone": phone,
        "name": f"客户{index:04d}",
        "operator": operator,
        "created_at": created.strftime("%Y-%m-%d %H:%M:%S"),
        "公司": company,
        "年龄": str(rng.randint(22, 60)),
        "签约日期": signed.isoformat(),
    }


def _number(rng: random.Random, carrier: Operator, taken: set[str]) -> str:
    for _ in range(10_000):
        phone = rng.choice(BLOCKS[carrier]) + f"{rng.randrange(10**8):08d}"
        info = phones.parse(phone)
        if info is not None and info.operator is carrier and phone not in taken:
            taken.add(phone)
            return phone
    raise DemoFailed(f"could not generate a {carrier.name} number: the phone data changed?")


def _carrier_name(row: dict[str, str]) -> str:
    if row["operator"]:  # a stated carrier (a ported number) wins over the block's
        return phones.OPERATOR_NAMES[Operator(int(row["operator"]))]
    info = phones.parse(row["phone"])
    return info.operator_name if info else "?"


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def load_pool(console: Console, settings: Settings, account: Account, path: Path) -> Summary:
    rows = pool_rows()
    write_csv(path, rows)
    by_carrier = Counter(_carrier_name(row) for row in rows)
    console.print(f"{path.name}: {len(rows):,} rows, header and first two:")
    for line in path.read_text(encoding="utf-8").splitlines()[:3]:
        console.print(f"  [dim]{escape(line)}[/]")
    console.print("carriers  " + " · ".join(f"{k} {v}" for k, v in by_carrier.most_common()))
    console.print(
        f"{MATCHING} rows are 公司=腾讯, 电信 and created in {WINDOW[0]}..{WINDOW[1][11:]} "
        f"({SEED_PHONE} among them: a Unicom block, its operator column says 1 = ported to "
        f"Telecom); {NEAR_MISSES} more in that window miss one of those; the rest are outside it."
    )

    async def work(database: Database) -> Summary:
        return await import_file(database, account.user_id, PoolFile(path))

    console.print(f"$ highseas pool import {path.name} --user {account.user_id}")
    try:
        summary = _with_database(settings, work)
    except (UnreadableFile, HighseasError) as exc:
        raise DemoFailed(f"pool import: {exc}") from exc
    console.print(json.dumps(dataclasses.asdict(summary), ensure_ascii=False))
    if summary.created != len(rows) or summary.rejected:
        raise DemoFailed(f"pool import stored {summary.created} of {len(rows)} rows: {summary}")
    return summary


# --- 4. the seed example -------------------------------------------------------------------


def seed_example(component_id: str) -> dict[str, Any]:
    """The request example of the seed page, with the demo's own 公司 component id."""
    return {
        "components": [{"id": component_id, "value": "腾讯"}],
        "phone": SEED_PHONE,
        "created_at": list(WINDOW),
        "operator": [1],
    }


def send_seed_example(console: Console, api: httpx.Client, account: Account) -> str:
    path = f"{account.base}/customer_to_task/{account.task_id}"
    body = seed_example(account.components["公司"])
    console.print(f"[bold]GET[/] {str(api.base_url).rstrip('/')}{path}")
    console.print("Content-Type: application/json")
    console.print("Authorization: Bearer <the token from step 2>")
    console.print_json(data=body)
    response = api.request("GET", path, json=body)
    console.print(f"[bold]→ HTTP {response.status_code}[/]")
    try:
        answer = response.json()
    except ValueError as exc:
        raise DemoFailed(f"customer_to_task answered {response.text[:200]!r}") from exc
    console.print_json(data=answer)
    if response.status_code != 200 or answer.get("message") != SEED_MESSAGE:
        raise DemoFailed(f"customer_to_task was not accepted: {answer.get('message')}")
    unique_id: str = answer["data"]["unique_id"]
    console.print(
        f"accepted before any import work; the worker now imports batch {unique_id} "
        f"(the example's phone filter narrows the {MATCHING} to 1)"
    )
    return unique_id


# --- 5. the callback and what it points to ----------------------------------------------------


def await_callback(console: Console, receiver: CallbackReceiver, unique_id: str) -> dict[str, Any]:
    try:
        delivery = receiver.deliveries.get(timeout=CALLBACK_WAIT_SECONDS)
    except queue.Empty:
        raise DemoFailed(
            f"no callback reached {receiver.url} within {CALLBACK_WAIT_SECONDS:.0f} s"
        ) from None
    console.print(f"callback received: POST {delivery.path}")
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        console.print(f"{name}: {delivery.headers.get(name, '(missing)')}")
    callback: dict[str, Any] = json.loads(delivery.body)
    console.print_json(data=callback)
    if callback.get("unique_id") != unique_id or callback.get("status") != "success":
        raise DemoFailed(f"the callback is not the success of batch {unique_id}")
    return callback


def show_download(console: Console, callback: dict[str, Any]) -> None:
    url = callback["data"]["url"]
    # No Bearer token: the key in the URL is the credential.
    response = httpx.get(url, timeout=10)
    if response.status_code != 200:
        raise DemoFailed(f"GET {url} answered HTTP {response.status_code}: {response.text[:200]}")
    numbers: list[str] = response.json()["numbers"]
    console.print(f"GET data.url → {len(numbers)} number(s) now in the task: {numbers[:10]}")
    if SEED_PHONE not in numbers:
        raise DemoFailed(f"{SEED_PHONE} is not among the downloaded numbers {numbers[:10]}")


def show_identification(
    console: Console, api: httpx.Client, account: Account, unique_id: str
) -> None:
    path = f"{account.base}/identification/{unique_id}"
    view: dict[str, Any] = {}

    def recorded() -> bool:
        # The worker records the attempt after the receiver answered, so it may lag a moment.
        view.update(call(api, "GET", path))
        delivery = view.get("delivery") or {}
        return bool(delivery.get("state") != "pending")

    _wait_for(recorded, timeout=5)
    delivery = view.get("delivery") or {}
    attempts = ", ".join(
        f"HTTP {a['status_code']} in {a['duration_ms']} ms" for a in delivery.get("attempts", [])
    )
    console.print(
        f"GET {path} → state {view.get('state')}, delivery {delivery.get('state')}"
        f" ({attempts or 'no attempt yet'}), matched/imported/duplicates "
        f"{view['data']['matched']}/{view['data']['imported']}/{view['data']['duplicates']}"
    )


# --- 6. next steps -------------------------------------------------------------------------


def next_steps() -> str:
    seed = json.dumps(seed_example("<公司 component id>"), ensure_ascii=False)
    api = "localhost:8000/agent-api"
    return f"""\
[bold]Against your own server[/] (its database is ./highseas.db):
  make run                                      # terminal 1
  .venv/bin/highseas agent create my-agency     # terminal 2: prints the token once
  AUTH="Authorization: Bearer hs_…"; JSON="Content-Type: application/json"
  curl -s {api}/user -H "$AUTH" -H "$JSON" -d '{{"name": "主账号"}}'  # its id: USER_ID
  curl -s {api}/user/$USER_ID/component -H "$AUTH" -H "$JSON" \\
       -d '{{"name": "公司", "type": "text"}}'  # its id filters by 公司
  curl -s {api}/user/$USER_ID/task -H "$AUTH" -H "$JSON" -d '{{"name": "外呼任务"}}'  # TASK_ID
  curl -s -X PUT {api}/callback/api_customer_to_task -H "$AUTH" -H "$JSON" \\
       -d '{{"url": "https://example.com/hook"}}'
  .venv/bin/highseas pool import leads.csv --user $USER_ID
  curl -s -X GET {api}/user/$USER_ID/customer_to_task/$TASK_ID -H "$AUTH" -H "$JSON" \\
       -d '{escape(seed)}'
  curl -s {api}/user/$USER_ID/identification/$UNIQUE_ID -H "$AUTH"
A callback URL on this machine needs [bold]HIGHSEAS_CALLBACK_ALLOW_PRIVATE=true make run[/].
Without "phone" the example takes all {MATCHING} 腾讯/电信 customers of the demo's window.
[bold]Read on:[/] http://127.0.0.1:8000/docs (interactive API) · README.md ·
docs/callbacks.md (verifying the signature) · docs/api-errors.md · docs/decisions.md"""
