"""API tokens: random, shown once, stored as SHA-256.

A token carries 256 bits from ``secrets``; for a secret that strong a fast hash is the right
tool (no password stretching needed), and it lets a lookup be one indexed equality.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "hs_"  # noqa: S105 - a public marker, not a secret
_PREFIX_SHOWN = 10


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def shown_prefix(token: str) -> str:
    """The part of a token that may appear in listings and logs."""
    return token[:_PREFIX_SHOWN]
