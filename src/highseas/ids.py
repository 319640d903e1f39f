"""Ids as clients send them: a UUID string, or anything else (which matches nothing)."""

from __future__ import annotations

import uuid


def parse_uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    """The UUID in ``value``, or None: a malformed id is an unknown one (404/403), not a 422,
    so an id's shape tells a client nothing about other tenants."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
