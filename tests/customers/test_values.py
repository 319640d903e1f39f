"""Component values and their index keys (pure)."""

from __future__ import annotations

import random

import pytest

from highseas.components import values


def test_number_keys_sort_like_numbers() -> None:
    rng = random.Random(7)
    numbers = [0.0, -0.0, 1.0, -1.0, 1e-300, -1e-300, 1e300, -1e300, 0.1, 2.5, -2.5]
    numbers += [rng.uniform(-1e6, 1e6) for _ in range(2000)]
    numbers += [float(rng.randint(-(10**12), 10**12)) for _ in range(2000)]
    by_key = sorted(numbers, key=values.number_key)
    assert by_key == sorted(numbers)
    assert values.number_key(0.0) == values.number_key(-0.0)
    assert all(len(values.number_key(n)) == 16 for n in numbers)


@pytest.mark.parametrize(
    ("raw", "shown"), [(25, 25), ("25", 25), ("25.0", 25), (" 2.5 ", 2.5), (-3, -3), ("1e3", 1000)]
)
def test_numbers(raw: object, shown: float) -> None:
    value = values.parse("number", raw)
    assert value.shown == shown
    assert value.key == values.number_key(float(shown))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("abc", "not_number"), ("nan", "not_number"), ("inf", "not_number"), ("1e400", "not_number"),
     (True, "invalid_type"), ({"a": 1}, "invalid_type"), (10**400, "not_number")],
)  # fmt: skip
def test_bad_numbers(raw: object, reason: str) -> None:
    with pytest.raises(values.InvalidValue) as caught:
        values.parse("number", raw)
    assert caught.value.reason == reason


def test_integer_rule() -> None:
    assert values.parse("number", "7", frozenset({"integer"})).shown == 7
    with pytest.raises(values.InvalidValue, match="整数"):
        values.parse("number", 7.5, frozenset({"integer"}))
    assert values.parse("text", "007", frozenset({"integer"})).key == "007"
    # A whole JSON number is an integer for a text component as for a number one.
    assert values.parse("text", 12.0, frozenset({"integer"})).key == "12"
    assert values.parse("text", 12.5).key == "12.5"
    with pytest.raises(values.InvalidValue):
        values.parse("text", "7a", frozenset({"integer"}))


@pytest.mark.parametrize(
    "raw", ["2024-03-05", "2024-03-05 18:30:00", "2024/03/05", "2024/3/5", "2024/03/05 01:02:03"]
)
def test_dates_key_on_the_day(raw: str) -> None:
    assert values.parse("date", raw).key == "2024-03-05"


@pytest.mark.parametrize("raw", ["2024-13-01", "2024-02-30", "yesterday", "20240305", 20240305])
def test_bad_dates(raw: object) -> None:
    with pytest.raises(values.InvalidValue) as caught:
        values.parse("date", raw)
    assert caught.value.reason == "not_date"


def test_text() -> None:
    assert values.parse("text", "  腾讯 ").key == "腾讯"
    assert values.parse("text", 12).key == "12"
    with pytest.raises(values.InvalidValue) as caught:
        values.parse("text", "x" * 256)
    assert caught.value.reason == "too_long"
    with pytest.raises(values.InvalidValue):
        values.parse("text", "2024-13-01", frozenset({"date"}))


def test_empty() -> None:
    assert all(values.is_empty(v) for v in (None, "", "  ", []))
    assert not any(values.is_empty(v) for v in (0, "0", False))
