"""``highseas pool import``: a whole file into one user's pool, in chunks.

Each chunk is one transaction (short SQLite write locks, bounded memory). A row is stored at
most once: the (user, phone) constraint makes a re-run after an interruption count what is
already there as duplicates instead of adding it twice. Every row that is not stored, rejected
or a duplicate, goes to ``FILE.rejected.csv`` with why.
"""

from __future__ import annotations

import csv
import errno
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

from pydantic_core import from_json

from highseas.customers import repository, service
from highseas.customers.files import PoolFile, UnreadableFile, is_blank
from highseas.customers.rows import RowChecker, RowError, RowInput
from highseas.db import Database
from highseas.errors import NotFound
from highseas.ids import parse_uuid
from highseas.models import User
from highseas.pool_fields import POOL_FIELDS

CHUNK_ROWS = 5000
T = TypeVar("T")
_UNWRITABLE = {
    errno.EISDIR: "它是一个目录",
    errno.EACCES: "没有写入权限",
    errno.EROFS: "文件系统只读",
}

Column = tuple[bool, str]
"""Where a column's cells go: (is a component, field name or component public id)."""
Line = tuple[RowInput, list[str]]
"""A data row: as the checker takes it, and its cells as in the file."""


@dataclass
class Summary:
    created: int
    duplicates: int
    rejected: int
    rejected_file: str | None


class _EveryError(service.IngestResult):
    """A chunk's result that keeps every row error: the API lists at most 1000, the rejected
    file lists every row that was not stored."""

    def note(self, errors: Iterable[RowError]) -> None:
        self.errors.extend(errors)


def _quoted(names: Iterable[str]) -> str:
    """Names as written, so spaces around them show."""
    return "、".join(f"「{name}」" for name in names)


def _column_plan(header: list[str], components: dict[str, str]) -> dict[int, Column]:
    """Column index → where its cells go. A header cell names a field or component exactly,
    or else once both are trimmed (a name stored with spaces is still matched as written)."""
    columns: dict[str, Column] = {name: (True, public_id) for name, public_id in components.items()}
    columns |= {name: (False, name) for name in POOL_FIELDS}
    # Where trimming makes two names equal, the one that needed no trimming wins.
    by_trimmed = {
        name.strip(): column
        for name, column in sorted(columns.items(), key=lambda item: item[0] == item[0].strip())
    }
    seen: dict[Column, int] = {}
    unknown = []
    for index, cell in enumerate(header):
        column = columns.get(cell) or by_trimmed.get(cell.strip())
        if column is None:
            if cell.strip():
                unknown.append(cell)
        elif column in seen:
            first = seen[column]
            raise UnreadableFile(
                f"第 {first + 1} 列{_quoted([header[first]])}和第 {index + 1} 列{_quoted([cell])}"
                "是同一列：每个字段和组件只能有一列"
            )
        else:
            seen[column] = index
    if unknown:
        raise UnreadableFile(
            f"未知的列：{_quoted(unknown)}；可用的列为 {_quoted([*POOL_FIELDS, *components])}"
            "（组件列以组件名称为表头）"
        )
    if (False, "phone") not in seen:
        raise UnreadableFile("表头缺少 phone 列")
    return {index: column for column, index in seen.items()}


def _extra(cell: str) -> Any:
    """Empty is null, as for every field; a JSON object or array is stored as that value (as
    ``async_customer`` stores it), read by the parser requests go through, so what it refuses
    there (a lone surrogate, nesting past about 200 levels) stays the cell's text here; any
    other text as the text."""
    text = cell.strip()
    if text[:1] in ("{", "["):
        try:
            return from_json(text)
        except ValueError:
            pass
    return text or None


def _lines(rows: Iterator[tuple[int, list[str]]], plan: dict[int, Column]) -> Iterator[Line]:
    for number, record in rows:
        fields: dict[str, Any] = {}
        components: dict[str, str] = {}
        for index, (is_component, name) in plan.items():
            cell = record[index] if index < len(record) else ""
            if is_component:
                components[name] = cell
            else:
                fields[name] = _extra(cell) if name == "extra" else cell
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


def _check(checker: RowChecker, chunk: list[Line], width: int) -> service.CheckedRows:
    """A row with cells past the header is refused unchecked: its cells are likely shifted
    (an unquoted comma), so none of its values can be trusted."""
    fitting: list[RowInput] = []
    overlong: list[tuple[RowInput, list[RowError]]] = []
    for row, record in chunk:
        if is_blank(record[width:]):
            fitting.append(row)
        else:
            overlong.append((row, [RowError(row.index, "row", record[width:], "too_many_cells")]))
    checked = service.check_rows(checker, fitting)
    checked.rejected += overlong
    return checked


def _write_unstored(writer: Any, chunk: list[Line], errors: list[RowError], width: int) -> None:
    """The rows not stored, as in the file: short rows padded so that the reason is under its
    header, and cells past the header after it."""
    reasons: dict[int, list[str]] = defaultdict(list)
    for error in errors:
        reasons[error.row].append(f"{error.field}: {error.reason}")
    for row, record in chunk:
        if row.index in reasons:
            cells = record[:width] + [""] * (width - len(record))
            past = [] if is_blank(record[width:]) else record[width:]
            writer.writerow([row.index, *cells, "; ".join(reasons[row.index]), *past])


def _open_rejected(path: Path) -> TextIO:
    try:
        return path.open("w", newline="", encoding="utf-8-sig")
    except OSError as exc:
        why = _UNWRITABLE.get(exc.errno or 0, exc.strerror)
        raise UnreadableFile(f"无法写入 {path}（未存入的行写在这里）：{why}") from None


async def import_file(
    database: Database,
    user_id: str,
    pool_file: PoolFile,
    *,
    on_progress: Callable[[int], None] = lambda rows: None,
) -> Summary:
    """Import every row of ``pool_file``; the rows not stored go to ``FILE.rejected.csv``."""
    async with database.transaction() as session:
        parsed = parse_uuid(user_id)
        user = None if parsed is None else await session.get(User, parsed)
        if user is None:
            raise NotFound(f"用户 {user_id} 不存在", reason="user_not_found")
        checker = await service.row_checker(
            session, user, label=lambda c: c.name, allow_created_at=True
        )
    header, rows = pool_file.header_and_rows()
    plan = _column_plan(header, {spec.name: spec.public_id for spec in checker.components.values()})
    rejected_path = pool_file.path.with_name(pool_file.path.name + ".rejected.csv")
    summary = Summary(created=0, duplicates=0, rejected=0, rejected_file=None)
    # Opened before the first chunk is stored: a file that cannot be written stops the
    # import before anything is stored.
    with _open_rejected(rejected_path) as rejected_handle:
        writer = csv.writer(rejected_handle)
        writer.writerow(["row", *header, "reason"])
        on_progress(0)  # the file and the user are fit: storing starts
        for chunk in _chunks(_lines(rows, plan), CHUNK_ROWS):
            checked = _check(checker, chunk, len(header))
            result = _EveryError()
            async with database.transaction() as session:
                await service.store_checked(session, user, checked, result)
            _write_unstored(writer, chunk, result.errors, len(header))
            summary.created += result.created
            summary.duplicates += result.duplicates
            summary.rejected += result.rejected
            on_progress(len(chunk))
    async with database.transaction() as session:
        await repository.refresh_statistics(session)
    if summary.duplicates or summary.rejected:
        summary.rejected_file = str(rejected_path)
    else:
        rejected_path.unlink()
    return summary
