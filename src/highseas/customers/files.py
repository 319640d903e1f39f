"""Reading pool files for ``highseas pool import``: CSV (UTF-8 with or without BOM, or GBK)
and XLSX, streamed row by row as text cells."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

# What to try instead when a CSV does not decode in the encoding it was read in.
_OTHER_ENCODING = {"utf-8": "GBK 文件请加 --encoding gbk", "gbk": "UTF-8 文件请去掉 --encoding gbk"}
# Quoted text, [colour]/[$-locale] sections and escaped characters of a number format: none
# of them is a date or time part.
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.')


class UnreadableFile(Exception):
    """The file cannot be imported at all (missing, wrong format or encoding, no header, or
    its rejected-rows file cannot be written)."""


def is_blank(record: list[str]) -> bool:
    return not any(cell.strip() for cell in record)


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
        return sum(1 for _ in self.header_and_rows()[1])

    def header_and_rows(self) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
        """The header (the first row that is not blank, its cells as written, up to the last
        named one), and each data row that is not blank with its number: the row under the
        header is 0, and a blank row keeps its number, so numbers match the file's rows."""
        records = self._records()
        header = next((record for record in records if not is_blank(record)), None)
        if header is None:
            raise UnreadableFile(f"{self.path} 是空文件：第一行应为表头（phone, name, …）")
        while not header[-1].strip():
            header.pop()
        rows = ((number, record) for number, record in enumerate(records) if not is_blank(record))
        return header, rows

    def _records(self) -> Iterator[list[str]]:
        if not self.path.is_file():
            raise UnreadableFile(f"文件不存在：{self.path}")
        return self._xlsx() if self.is_xlsx else self._csv()

    def _csv(self) -> Iterator[list[str]]:
        encoding = codecs.lookup(self.encoding).name
        if encoding == "gbk" and _is_utf8_text(self.path):
            raise UnreadableFile(
                f"{self.path} 是 UTF-8 编码，按 GBK 读会得到乱码；{_OTHER_ENCODING[encoding]}"
            )
        try:
            # utf-8-sig reads files with and without a BOM alike.
            with self.path.open(
                newline="", encoding="utf-8-sig" if encoding == "utf-8" else encoding
            ) as handle:
                yield from csv.reader(handle)
        except UnicodeDecodeError as exc:
            raise UnreadableFile(
                f"{self.path} 不是 {self.encoding} 编码（第 {exc.start} 字节附近）；"
                + _OTHER_ENCODING.get(encoding, "请用 --encoding 指定文件的编码")
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
            # Cells, not values: a date's number format says whether its time is shown.
            for cells in sheet.iter_rows():
                yield [_cell_text(cell) for cell in cells]
        finally:
            workbook.close()


def _is_utf8_text(path: Path) -> bool:
    """Whether the file is valid UTF-8 with some non-ASCII text in it. Most UTF-8 Chinese
    also decodes as GBK, into other characters; real GBK text is practically never valid
    UTF-8 (its trail bytes would have to line up as UTF-8 continuations throughout)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    non_ascii = False
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
                non_ascii = non_ascii or not chunk.isascii()
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return non_ascii


def _cell_text(cell: Any) -> str:
    """A cell as the text a user sees in it: spreadsheets store phone numbers as floats, and
    dates and times as datetimes whose number format tells whether the time is shown."""
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        shows_time = re.search("[hs]", _FORMAT_LITERALS.sub("", cell.number_format.lower()))
        return value.strftime("%Y-%m-%d %H:%M:%S" if shows_time else "%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
