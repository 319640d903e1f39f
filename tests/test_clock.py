from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

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
