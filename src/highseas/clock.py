"""Time: stored in UTC, shown as ``Y-m-d H:i:s`` in the service time zone (contract §1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import PlainSerializer

WIRE_FORMAT = "%Y-%m-%d %H:%M:%S"

# Set once per process from Settings.timezone (create_app / the CLI); a process serves one zone.
_zone: ZoneInfo = ZoneInfo("Asia/Shanghai")


def set_service_zone(zone: ZoneInfo) -> None:
    global _zone  # noqa: PLW0603 - one zone per process, set at start-up
    _zone = zone


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_wire(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(_zone).strftime(WIRE_FORMAT)


def from_wire(text: str) -> datetime:
    """Parse ``Y-m-d H:i:s`` in the service zone into an aware UTC datetime; ValueError when
    it is no such time: not a date, a local time skipped by a daylight-saving change (in a
    zone that has one), or one whose UTC falls outside years 1–9999 (``0001-01-01 00:00:00``
    east of UTC). A repeated local time is its first occurrence."""
    local = datetime.strptime(text, WIRE_FORMAT).replace(tzinfo=_zone)
    try:
        moment = local.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text} is out of range in UTC") from None
    if moment.astimezone(_zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise ValueError(f"{text} does not exist in {_zone}")
    return moment


WireTime = Annotated[datetime, PlainSerializer(to_wire, return_type=str)]
"""A datetime that serialises as ``Y-m-d H:i:s`` in the service zone."""
