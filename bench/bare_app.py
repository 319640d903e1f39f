"""The bare FastAPI endpoint bench/api.py compares customer_to_task against.

    .venv/bin/python bench/bare_app.py --port PORT [--database-url URL]

One process, served by ``uvicorn.run`` with the options ``highseas serve`` gives it (so the
same event loop and HTTP implementation, whichever uvicorn picks), two routes of the same path
shape as customer_to_task:

- ``GET /agent-api/user/{user_id}/customer_to_task/{task_id}``, the bare endpoint: no
  middleware, no dependency, no database, the request body not read; it answers the same
  envelope through the same response model (``Envelope[UniqueId]``, a fresh uuid4).
- ``GET /bare-insert/user/{user_id}/customer_to_task/{task_id}`` (only with
  ``--database-url``): the same, plus one ``INSERT`` of one row and its commit through
  ``highseas.db.Database`` (the product's engine settings: ``highseas.sqlite_driver`` with
  ``BEGIN IMMEDIATE``, or psycopg). A reference for what a single write transaction costs,
  not the goal's baseline.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from highseas.clock import utcnow
from highseas.customers.schemas import UniqueId
from highseas.db import Database
from highseas.envelope import Envelope, ok

PATH = "/user/{user_id}/customer_to_task/{task_id}"
MESSAGE = "号码导入任务信息请在回调中查收"
INSERT = text("INSERT INTO bench_bare_rows (id, created_at) VALUES (:id, :created_at)")


def create_bare_app(database_url: str | None) -> FastAPI:
    database = Database(database_url) if database_url else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if database is None:
            yield
            return
        async with database.transaction() as session:
            await session.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS bench_bare_rows "
                    "(id VARCHAR(36) PRIMARY KEY, created_at VARCHAR(40) NOT NULL)"
                )
            )
        yield
        await database.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get(f"/agent-api{PATH}", response_model=Envelope[UniqueId])
    async def bare(user_id: str, task_id: str) -> Envelope[UniqueId]:
        return ok(UniqueId(unique_id=uuid.uuid4()), MESSAGE)

    if database is not None:

        @app.get(f"/bare-insert{PATH}", response_model=Envelope[UniqueId])
        async def bare_insert(user_id: str, task_id: str) -> Envelope[UniqueId]:
            unique_id = uuid.uuid4()
            async with database.transaction() as session:
                await session.execute(
                    INSERT, {"id": str(unique_id), "created_at": utcnow().isoformat()}
                )
            return ok(UniqueId(unique_id=unique_id), MESSAGE)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    # The arguments `highseas serve` passes (src/highseas/cli.py), nothing more.
    uvicorn.run(
        create_bare_app(args.database_url),
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
