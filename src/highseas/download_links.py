"""Download links whose keys are never stored: derived from the server key when shown.

A link is the credential to a batch's numbers (contract §3), so its key is kept only as a
hash (``download_keys``, for the lookup). The texts that carry the link — the batch's result
and its callback message, both stored — hold a marker instead of the key: ``hs-dl-`` and a
random nonce. Whatever shows such a text (the callback at send time, the identification
endpoint) puts in the key: an HMAC of the nonce under a key derived from the server key
(``sealing.derived_key``). Someone who reads the database or a backup sees nonces and
hashes, and without the server key can open no link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Any

from highseas.sealing import DOWNLOAD_KEY, derived_key

# A link's marker, where only a link has one (a row's text echoed in an error is no link).
_MARKED = re.compile(r"(?<=/agent-api/download-number\?key=)hs-dl-([0-9a-f]{32})")


def new_link(public_url: str, server_key: str) -> tuple[str, str]:
    """A fresh link as stored (a marker where its key goes), and its key's hash."""
    nonce = secrets.token_hex(16)
    stored = f"{public_url.rstrip('/')}/agent-api/download-number?key=hs-dl-{nonce}"
    return stored, hash_key(key_of(server_key, nonce))


def key_of(server_key: str, nonce: str) -> str:
    digest = hmac.new(derived_key(server_key, DOWNLOAD_KEY), nonce.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def shown(text: str, server_key: str) -> str:
    """A stored text with each link's marker replaced by the link's key."""
    return _MARKED.sub(lambda found: key_of(server_key, found[1]), text)


def shown_result(result: dict[str, Any] | None, server_key: str) -> dict[str, Any] | None:
    """A batch's stored result with its link, if it has one, as the client gets it."""
    if result is None or not isinstance(result.get("url"), str):
        return result
    return {**result, "url": shown(result["url"], server_key)}
