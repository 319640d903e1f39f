"""A download streams in pages, ascending by pool customer: memory stays bounded by the page,
not the batch. 200,000 numbers in pages of 2,000 (the service's page is 20,000 and holds
about 10 MB): a batch a hundred pages long, read in a fifth of the time of a million."""

from __future__ import annotations

import json
import tracemalloc
import uuid
from functools import partial

import pytest
from sqlalchemy import text

from highseas.batches import repository
from highseas.batches.endpoints import _numbers_json
from highseas.db import Database
from highseas.models import Batch, BatchState, BatchType, CallTask
from tests.fixtures.factories import make_agent, make_user

pytestmark = pytest.mark.slow

COUNT = 200_000
PAGE = 2_000
# Customer ids a permutation of the phones' order, as an import by phone ranges leaves them.
STRIDE = 7919  # coprime with COUNT


def _phone_of_customer(customer_id: int) -> str:
    n = (customer_id - 1) * pow(STRIDE, -1, COUNT) % COUNT or COUNT
    return str(13000000000 + n)


async def test_a_long_batch_streams_in_bounded_memory(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    paged = partial(repository.numbers_of_batch, page_size=PAGE)
    monkeypatch.setattr(repository, "numbers_of_batch", paged)
    agent = await make_agent(db)
    user = await make_user(db, agent)
    async with db.transaction() as session:
        task = CallTask(user_id=user.id, name="big")
        session.add(task)
        await session.flush()
        batch = Batch(
            agent_id=user.agent_id,
            user_id=user.id,
            type=BatchType.CUSTOMER_TO_TASK,
            task_id=task.id,
            request={},
            state=BatchState.SUCCEEDED,
        )
        session.add(batch)
        await session.flush()
        task_id, batch_id = task.id, batch.id
    series = (
        "generate_series(1, :count) AS n"
        if db.engine.dialect.name == "postgresql"
        else "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :count)"
        " SELECT n FROM s)"
    )
    ids = (
        {"task": task_id, "batch": batch_id}
        if db.engine.dialect.name == "postgresql"
        else {"task": task_id.hex, "batch": batch_id.hex}
    )
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO task_numbers"
                " (task_id, phone, customer_id, batch_id, status, created_at)"
                " SELECT :task, CAST(13000000000 + n AS TEXT),"
                f" CAST(n AS BIGINT) * {STRIDE} % :count + 1, :batch, 0, CURRENT_TIMESTAMP"
                f" FROM {series} WHERE n > 0"
            ),
            {**ids, "count": COUNT},
        )

    tracemalloc.start()
    size = 0
    first: list[bytes] = []  # the opening and the first page
    last: list[bytes] = []  # the last page and the closing
    async for chunk in _numbers_json(db, uuid.UUID(str(batch_id))):
        size += len(chunk)
        first = first if len(first) == 2 else [*first, chunk]
        last = [*last[-1:], chunk]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # A page read, sorted and encoded: under 2 MB whatever the batch's size (the whole batch
    # read at once peaks near 60 MB).
    assert peak < 2 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB download"
    assert size > 14 * COUNT  # every number went out
    assert first[0] == b'{"numbers":[' and last[-1] == b"]}"
    first_page = json.loads(b"[" + first[1] + b"]")
    assert first_page[:2] == [_phone_of_customer(1), _phone_of_customer(2)]
    last_page = json.loads(b"[" + last[0].removeprefix(b",") + b"]")
    assert last_page[-1] == _phone_of_customer(COUNT)
