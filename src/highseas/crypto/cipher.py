"""Interface encryption (接口加密, contract §6): the cipher. Pure: no I/O, no clock.

AES-256-GCM with an agent's 32-byte key. A token is the standard base64 of
``nonce(12) ‖ ciphertext ‖ tag(16)`` over the UTF-8 plain text, with no associated data:
what every client library can produce with a few lines (docs/encryption.md). A fresh random
nonce per token, so the same phone encrypts differently each time.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALGORITHM = "AES-256-GCM"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


class Undecryptable(Exception):
    """Not a token made with this key (or altered, or not base64, or not UTF-8 inside)."""


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def key_text(key: bytes) -> str:
    """How a key is shown to the agent: standard base64."""
    return base64.b64encode(key).decode("ascii")


def key_from_text(text: str) -> bytes:
    key = base64.b64decode(text, validate=True)
    if len(key) != KEY_BYTES:
        raise ValueError(f"an {ALGORITHM} key is {KEY_BYTES} bytes, not {len(key)}")
    return key


@lru_cache(maxsize=64)
def _aead(key: bytes) -> AESGCM:
    # Building the cipher costs as much as encrypting a phone: a download encrypts millions.
    return AESGCM(key)


def encrypt(key: bytes, plain: str, *, nonce: bytes | None = None) -> str:
    """``nonce`` is for tests (known answers) only: a nonce must never repeat under one key."""
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"the nonce is {NONCE_BYTES} bytes")
    sealed = _aead(key).encrypt(nonce, plain.encode("utf-8"), None)
    return base64.b64encode(nonce + sealed).decode("ascii")


def decrypt(key: bytes, token: str) -> str:
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Undecryptable("not standard base64") from exc
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        raise Undecryptable("too short for nonce and tag")
    try:
        plain = _aead(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None)
        return plain.decode("utf-8")
    except (InvalidTag, UnicodeDecodeError) as exc:
        raise Undecryptable("does not open under this key") from exc


@dataclass(frozen=True, slots=True)
class Keyring:
    """An agent's keys: the current one, and after a rotation the previous one, which still
    decrypts for ``grace`` (clients switch at their own pace). Outputs use the current key."""

    current: bytes
    previous: bytes | None = None
    rotated_at: datetime | None = None
    grace: timedelta = timedelta(0)

    def encrypt(self, plain: str) -> str:
        return encrypt(self.current, plain)

    def decrypt(self, token: str, *, now: datetime) -> str:
        try:
            return decrypt(self.current, token)
        except Undecryptable:
            if not self.previous_decrypts(now):
                raise
        assert self.previous is not None
        return decrypt(self.previous, token)

    def previous_decrypts(self, now: datetime) -> bool:
        return self.previous is not None and (
            self.rotated_at is not None and now < self.rotated_at + self.grace
        )

    def previous_valid_until(self) -> datetime | None:
        if self.previous is None or self.rotated_at is None:
            return None
        return self.rotated_at + self.grace
