"""Reading pool files (``customers.files``): rows as the text a user sees, numbered as in the
file, and what to try when a file does not decode."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from highseas.customers.files import PoolFile, UnreadableFile


def _xlsx(path: Path, rows: list[list[object]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def test_csv_blank_rows_are_skipped_and_keep_their_number(tmp_path: Path) -> None:
    path = tmp_path / "pool.csv"
    path.write_text("\n phone ,name,,\n13800000001,张三\n\n , \n13800000002\n", encoding="utf-8")
    header, rows = PoolFile(path).header_and_rows()
    assert header == [" phone ", "name"]  # as written, up to the last named cell
    assert list(rows) == [(0, ["13800000001", "张三"]), (3, ["13800000002"])]
    assert PoolFile(path).count_rows() == 2


def test_xlsx_blank_rows_are_skipped_and_keep_their_number(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "pool.xlsx", [[], ["phone"], [13800000001], [], [None], ["12"]])
    header, rows = PoolFile(path).header_and_rows()
    assert header == ["phone"]
    assert list(rows) == [(0, ["13800000001"]), (3, ["12"])]
    assert PoolFile(path).count_rows() == 2


def test_xlsx_cells_are_read_as_shown(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["phone", "a", "b", "c", "d", "e"])
    sheet.append(
        [
            13800000001.0,  # spreadsheets keep phone numbers as floats
            3.5,
            date(1990, 1, 1),
            datetime(2021, 6, 30),
            datetime(2021, 6, 30, 13, 20, 28),
            datetime(1990, 1, 2),
        ]
    )
    # A Chinese date format: its locale tag and quoted text are no time parts.
    sheet["F2"].number_format = '[$-zh-CN]yyyy"年"m"月"d"日"'
    workbook.save(tmp_path / "pool.xlsx")
    _, rows = PoolFile(tmp_path / "pool.xlsx").header_and_rows()
    assert list(rows) == [
        (
            0,
            [
                "13800000001",
                "3.5",
                "1990-01-01",
                "2021-06-30 00:00:00",  # a datetime cell shows its time, even at midnight
                "2021-06-30 13:20:28",
                "1990-01-02",
            ],
        )
    ]


@pytest.mark.parametrize(
    ("written", "read", "hint"),
    [("gbk", "utf-8", "GBK 文件请加 --encoding gbk"), ("utf-8", "gbk", "请去掉 --encoding gbk")],
)
def test_a_wrong_encoding_says_what_to_try(
    tmp_path: Path, written: str, read: str, hint: str
) -> None:
    path = tmp_path / "pool.csv"
    path.write_text("phone,name\n13800000001,中\n", encoding=written)
    with pytest.raises(UnreadableFile, match=hint):
        PoolFile(path, read).count_rows()


def test_utf8_read_as_gbk_is_refused_even_when_it_would_decode(tmp_path: Path) -> None:
    """UTF-8 张三 decodes as GBK without an error, into other characters: refused, not stored
    garbled. A real GBK file with the same text reads as GBK."""
    path = tmp_path / "pool.csv"
    path.write_text("phone,name\n13800000001,张三\n", encoding="utf-8")
    assert path.read_bytes().decode("gbk")  # the trap: no decoding error
    with pytest.raises(UnreadableFile, match=r"是 UTF-8 编码.*请去掉 --encoding gbk"):
        PoolFile(path, "gbk").count_rows()
    path.write_text("phone,name\n13800000001,张三\n", encoding="gbk")
    header, rows = PoolFile(path, "gbk").header_and_rows()
    assert header == ["phone", "name"] and list(rows) == [(0, ["13800000001", "张三"])]
