"""Secrets at rest: AES-256-GCM under a key derived from the server's secret key.

Each user of sealing names a purpose (callback signing secrets, interface-encryption keys);
the key is HKDF-SHA256 of ``Settings.resolved_secret_key()`` with that purpose as label, so a
value sealed for one purpose never opens as another even though the server key is shared.
Each value gets a random 96-bit nonce, and the owner's id is bound in as associated data: a
sealed value copied onto another agent's row does not open. Stored as ``v1.`` + url-safe
base64 of ``nonce ‖ ciphertext ‖ tag``; the version leaves room for another scheme later.
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1."
_NONCE_BYTES = 12

# The purposes in use. A label is part of every stored value's key: never change one.
CALLBACK_SECRET = b"highseas/callback-secret/v1"
ENCRYPTION_KEY = b"highseas/encryption-key/v1"
DOWNLOAD_KEY = b"highseas/download-key/v1"  # download_links.py: derives, does not seal


class Unsealable(Exception):
    """The value was sealed under another server key or purpose, or has been altered."""


@lru_cache(maxsize=8)
def derived_key(server_key: str, purpose: bytes) -> bytes:
    """32 bytes of key for one purpose, from the server key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        server_key.encode()
    )


@lru_cache(maxsize=8)
def _cipher(server_key: str, purpose: bytes) -> AESGCM:
    return AESGCM(derived_key(server_key, purpose))


def seal(server_key: str, plain: str, *, owner: bytes, purpose: bytes) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = nonce + _cipher(server_key, purpose).encrypt(nonce, plain.encode(), owner)
    return _VERSION + base64.urlsafe_b64encode(sealed).decode("ascii")


def unseal(server_key: str, sealed: str, *, owner: bytes, purpose: bytes) -> str:
    if not sealed.startswith(_VERSION):
        raise Unsealable("unknown sealing version")
    try:
        raw = base64.urlsafe_b64decode(sealed.removeprefix(_VERSION))
        nonce, ciphertext = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        return _cipher(server_key, purpose).decrypt(nonce, ciphertext, owner).decode()
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise Unsealable("the value does not open under this server key") from exc
