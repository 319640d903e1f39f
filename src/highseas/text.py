"""Text that no database can store: PostgreSQL's text holds no NUL character."""

from __future__ import annotations

from typing import Any


def first_nul(value: Any) -> tuple[tuple[str | int, ...], str] | None:
    """The place and text of the first string with a NUL in parsed JSON (keys included)."""
    if isinstance(value, str):
        return ((), value) if "\x00" in value else None
    if not isinstance(value, dict | list):
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return (key,), key
        if (found := first_nul(item)) is not None:
            return (key, *found[0]), found[1]
    return None
