"""Reading pool files for ``highseas pool import``: CSV (UTF-8 with or without BOM, or GBK)
and XLSX, streamed row by row as ``{header: text}``."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

ENCODINGS = ("utf-8", "gbk")


class UnreadableFile(Exception):
    """The file cannot be imported at all (missing, wrong format or encoding, no header)."""


@dataclass(frozen=True)
class PoolFile:
    path: Path
    encoding: str = "utf-8"

    @property
    def is_xlsx(self) -> bool:
        return self.path.suffix.lower() in (".xlsx", ".xlsm")

    def count_rows(self) -> int:
        """Data rows, by a first full pass that also proves the file decodes, so an encoding
        error is found before anything is stored."""
        return sum(1 for _ in self._records()) - 1

    def header_and_rows(self) -> tuple[list[str], Iterator[list[str]]]:
        records = self._records()
        header = next(records, None)
        if header is None:
            raise UnreadableFile(f"{self.path} 是空文件：第一行应为表头（phone, name, …）")
        return [h.strip() for h in header], records

    def _records(self) -> Iterator[list[str]]:
        if not self.path.is_file():
            raise UnreadableFile(f"文件不存在：{self.path}")
        return self._xlsx() if self.is_xlsx else self._csv()

    def _csv(self) -> Iterator[list[str]]:
        # utf-8-sig reads files with and without a BOM alike.
        encoding = "utf-8-sig" if codecs.lookup(self.encoding).name == "utf-8" else self.encoding
        try:
            with self.path.open(newline="", encoding=encoding) as handle:
                yield from csv.reader(handle)
        except UnicodeDecodeError as exc:
            raise UnreadableFile(
                f"{self.path} 不是 {self.encoding} 编码（第 {exc.start} 字节附近）；"
                "GBK 文件请加 --encoding gbk"
            ) from None
        except csv.Error as exc:
            raise UnreadableFile(f"{self.path} 不是合法的 CSV：{exc}") from None

    def _xlsx(self) -> Iterator[list[str]]:
        # Imported here: a fifth of a second that every process would pay at start for a
        # format only `pool import` reads.
        from openpyxl import load_workbook  # noqa: PLC0415

        try:
            workbook = load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a broken file
            raise UnreadableFile(f"{self.path} 不是可读的 XLSX 文件：{exc}") from None
        try:
            sheet = workbook.active
            if sheet is None:
                return
            for values in sheet.iter_rows(values_only=True):
                if any(v is not None for v in values):
                    yield [_cell_text(v) for v in values]
        finally:
            workbook.close()


def _cell_text(value: Any) -> str:
    """A cell as the text a CSV would hold (spreadsheets turn phone numbers into floats)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
