"""Component values: what fits a component, how it is shown, and its index key. Pure.

One rule set serves rows that are stored (async_customer, ``pool import``) and filter values
(get_customer, customer_to_task), so a value that can be stored can always be found.

Index keys (``customer_values.value_key``): text as given; dates as ``YYYY-MM-DD`` (a date
filter means "the same day"); numbers as 16 hex digits of the IEEE-754 double, transformed so
that text order is numeric order. One text B-tree then answers eq, in, prefix and ranges for
all three types on SQLite and PostgreSQL alike (docs/adr/0005-component-values.md).
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from highseas.models import ComponentType, ValidateRule

MAX_TEXT_LENGTH = 255
_INTEGER = re.compile(r"[+-]?\d+")
# Plain str constants: comparing StrEnum members costs an attribute lookup per row.
_NUMBER, _DATE = ComponentType.NUMBER.value, ComponentType.DATE.value
_INTEGER_RULE, _DATE_RULE = ValidateRule.INTEGER.value, ValidateRule.DATE.value
_SCALARS = (str, int, float)
_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d", "%Y/%m/%d %H:%M:%S")


class InvalidValue(Exception):
    """A value that does not fit its component; ``reason`` is a stable snake_case word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Value:
    shown: str | int | float
    key: str


def is_empty(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip()) or raw == []


def parse(component_type: str, raw: Any, rules: frozenset[str] = frozenset()) -> Value:
    """The value of a non-empty ``raw`` for a component of this type and these rules."""
    if raw.__class__ not in _SCALARS and (isinstance(raw, bool) or not isinstance(raw, _SCALARS)):
        raise InvalidValue("invalid_type", "必须是字符串或数字")
    if component_type == _NUMBER:
        return _number(raw, integer=_INTEGER_RULE in rules)
    if component_type == _DATE:
        return _date(raw)
    # A whole JSON number is its digits whatever its spelling (12.0 is 12), as a number
    # component shows it and as the platform's rules read it.
    text = str(int(raw)) if raw.__class__ is float and raw.is_integer() else str(raw).strip()
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidValue("too_long", f"不能超过 {MAX_TEXT_LENGTH} 个字符")
    if "\x00" in text:
        raise InvalidValue("invalid_text", "不能包含 NUL 字符")
    if _INTEGER_RULE in rules and not _INTEGER.fullmatch(text):
        raise InvalidValue("not_integer", "必须是整数")
    if _DATE_RULE in rules:
        _parse_date(text)
    return Value(shown=text, key=text)


def pattern(raw: str | int | float | None) -> str:
    """A ``contains`` or ``prefix`` filter's text, as given: not trimmed (" c" finds "a c"
    but not "abc"), and, as a stored text, at most 255 characters and no NUL."""
    if raw is None or raw == "":
        raise InvalidValue("required", "需要一个非空的值")
    text = raw if isinstance(raw, str) else str(raw)
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidValue("too_long", f"不能超过 {MAX_TEXT_LENGTH} 个字符")
    if "\x00" in text:
        raise InvalidValue("invalid_text", "不能包含 NUL 字符")
    return text


def number_key(number: float) -> str:
    """Hex of the double with the sign bit flipped (positives) or all bits flipped (negatives):
    unsigned big-endian order, hence text order, equals numeric order."""
    bits: int = struct.unpack(">Q", struct.pack(">d", number + 0.0))[0]  # + 0.0: -0.0 → 0.0
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | 1 << 63
    return f"{bits:016x}"


def _number(raw: str | int | float, *, integer: bool) -> Value:
    if isinstance(raw, str) and "_" in raw:  # float() reads Python's "1_000"; no user writes it
        raise InvalidValue("not_number", "必须是数字")
    try:
        number = float(raw)
    except ValueError:
        raise InvalidValue("not_number", "必须是数字") from None
    except OverflowError:
        raise InvalidValue("not_number", "数值超出范围") from None
    if not math.isfinite(number):
        raise InvalidValue("not_number", "必须是有限的数字")
    is_integral = number.is_integer()
    if integer and not is_integral:
        raise InvalidValue("not_integer", "必须是整数")
    shown: int | float = int(number) if is_integral else number
    return Value(shown=shown, key=number_key(number))


def _parse_date(text: str) -> date:
    if len(text) == 10 and text[4] == "-" and text[7] == "-":  # the common case, in C
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise InvalidValue("not_date", "必须是日期，格式 YYYY-MM-DD 或 YYYY-MM-DD HH:MM:SS")


def _date(raw: str | int | float) -> Value:
    text = str(raw).strip()
    day = _parse_date(text).isoformat()
    return Value(shown=text.replace("/", "-"), key=day)
