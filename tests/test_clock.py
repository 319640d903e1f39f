from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from highseas.clock import WireTime, from_wire, set_service_zone, to_wire


def test_wire_times_are_shown_in_the_service_zone() -> None:
    set_service_zone(ZoneInfo("Asia/Shanghai"))
    instant = datetime(2021, 6, 30, 5, 20, 28, tzinfo=UTC)
    assert to_wire(instant) == "2021-06-30 13:20:28"
    assert from_wire("2021-06-30 13:20:28") == instant


def test_models_serialise_wire_times() -> None:
    set_service_zone(ZoneInfo("Asia/Shanghai"))

    class Row(BaseModel):
        created_at: WireTime

    row = Row(created_at=datetime(2021, 6, 30, 16, 0, 0, tzinfo=UTC))
    assert row.model_dump(mode="json") == {"created_at": "2021-07-01 00:00:00"}


def test_a_time_whose_utc_is_before_year_one_is_a_value_error() -> None:
    set_service_zone(ZoneInfo("Asia/Shanghai"))
    with pytest.raises(ValueError, match="out of range"):
        from_wire("0001-01-01 00:00:00")
    assert from_wire("9999-12-31 23:59:59") == datetime(9999, 12, 31, 15, 59, 59, tzinfo=UTC)


def test_a_local_time_a_daylight_saving_change_skips_is_a_value_error() -> None:
    set_service_zone(ZoneInfo("America/New_York"))
    try:
        with pytest.raises(ValueError, match="does not exist"):
            from_wire("2026-03-08 02:30:00")  # clocks went from 02:00 to 03:00
        assert from_wire("2026-03-08 03:30:00") == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
        # 01:30 happened twice on 2026-11-01: the first (EDT) is meant.
        assert from_wire("2026-11-01 01:30:00") == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
        with pytest.raises(ValueError, match="out of range"):
            from_wire("9999-12-31 23:59:59")  # west of UTC: past year 9999
    finally:
        set_service_zone(ZoneInfo("Asia/Shanghai"))
