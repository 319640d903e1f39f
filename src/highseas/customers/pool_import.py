"""``highseas pool import``: a whole file into one user's pool, in chunks.

Each chunk is one transaction (short SQLite write locks, bounded memory). A row is stored at
most once: the (user, phone) constraint makes a re-run after an interruption count what is
already there as duplicates instead of adding it twice.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from highseas.customers import repository, service
from highseas.customers.files import PoolFile, UnreadableFile
from highseas.customers.rows import RowInput
from highseas.db import Database
from highseas.errors import NotFound
from highseas.ids import parse_uuid
from highseas.models import User

CHUNK_ROWS = 5000
T = TypeVar("T")
FIELD_COLUMNS = (
    "phone",
    "name",
    "email",
    "company",
    "sex",
    "sort",
    "extra",
    "operator",
    "created_at",
)


@dataclass
class Summary:
    created: int
    duplicates: int
    rejected: int
    rejected_file: str | None


def _column_plan(header: list[str], components: dict[str, str]) -> dict[int, tuple[bool, str]]:
    """Column index → (is a component, field name or component public id)."""
    if "phone" not in header:
        raise UnreadableFile("表头缺少 phone 列")
    plan: dict[int, tuple[bool, str]] = {}
    unknown = []
    for index, name in enumerate(header):
        if name in FIELD_COLUMNS:
            plan[index] = (False, name)
        elif name in components:
            plan[index] = (True, components[name])
        elif name:
            unknown.append(name)
    if unknown:
        known = ", ".join([*FIELD_COLUMNS, *components])
        raise UnreadableFile(
            f"未知的列：{', '.join(unknown)}；可用的列为 {known}（组件列以组件名称为表头）"
        )
    return plan


def _rows(
    records: Iterator[list[str]], plan: dict[int, tuple[bool, str]]
) -> Iterator[tuple[RowInput, list[str]]]:
    for number, record in enumerate(records):
        fields: dict[str, str] = {}
        components: dict[str, str] = {}
        for index, (is_component, name) in plan.items():
            value = record[index] if index < len(record) else ""
            (components if is_component else fields)[name] = value
        yield RowInput(number, fields, components), record


def _chunks(items: Iterator[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _store(
    database: Database,
    user: User,
    chunk: list[tuple[RowInput, list[str]]],
    checked: service.CheckedRows,
    *,
    result: service.IngestResult,
    writer: Any,
) -> int:
    """Store one chunk and list its rejected rows; the chunk's number of rows."""
    async with database.transaction() as session:
        await service.store_checked(session, user, checked, result)
    originals = {row.index: record for row, record in chunk}
    for row, errors in checked.rejected:
        reasons = "; ".join(f"{error.field}: {error.reason}" for error in errors)
        writer.writerow([row.index, *originals[row.index], reasons])
    return len(chunk)


async def import_file(
    database: Database,
    user_id: str,
    pool_file: PoolFile,
    *,
    on_progress: Callable[[int], None] = lambda rows: None,
) -> Summary:
    """Import every row of ``pool_file``; rejected rows go to ``FILE.rejected.csv``."""
    async with database.transaction() as session:
        parsed = parse_uuid(user_id)
        user = None if parsed is None else await session.get(User, parsed)
        if user is None:
            raise NotFound(f"用户 {user_id} 不存在", reason="user_not_found")
        checker = await service.row_checker(
            session, user, label=lambda c: c.name, allow_created_at=True
        )
    header, records = pool_file.header_and_rows()
    plan = _column_plan(header, {spec.name: spec.public_id for spec in checker.components.values()})
    rejected_path = pool_file.path.with_name(pool_file.path.name + ".rejected.csv")
    result = service.IngestResult()
    with rejected_path.open("w", newline="", encoding="utf-8-sig") as rejected_handle:
        writer = csv.writer(rejected_handle)
        writer.writerow(["row", *header, "reason"])
        for chunk in _chunks(_rows(records, plan), CHUNK_ROWS):
            checked = service.check_rows(checker, [row for row, _ in chunk])
            on_progress(await _store(database, user, chunk, checked, result=result, writer=writer))
    async with database.transaction() as session:
        await repository.refresh_statistics(session)
    if result.rejected == 0:
        rejected_path.unlink()
    return Summary(
        created=result.created,
        duplicates=result.duplicates,
        rejected=result.rejected,
        rejected_file=str(rejected_path) if result.rejected else None,
    )
