"""The interface-encryption cipher (contract §6), pure: tokens, tampering, keys and grace."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from highseas.crypto import cipher
from highseas.crypto.cipher import Keyring, Undecryptable

KEY = bytes(range(32))
NONCE = bytes(range(100, 112))
# The same token from Node's crypto and Java's javax.crypto (AES/GCM/NoPadding, 128-bit tag).
KNOWN_TOKEN = "ZGVmZ2hpamtsbW5veSjmVknYZaYOUm9lCD/LOqlGUQfWh+jpHmw/"


@pytest.mark.parametrize("plain", ["13800138000", "", "腾讯科技（深圳）有限公司", "a" * 1000])
def test_round_trip(plain: str) -> None:
    token = cipher.encrypt(KEY, plain)
    assert cipher.decrypt(KEY, token) == plain


def test_the_token_layout() -> None:
    plain = "13800138000"
    token = cipher.encrypt(KEY, plain, nonce=NONCE)
    assert token == KNOWN_TOKEN
    raw = base64.b64decode(token, validate=True)  # standard alphabet, padded
    assert len(raw) == cipher.NONCE_BYTES + len(plain.encode()) + cipher.TAG_BYTES
    nonce, sealed = raw[:12], raw[12:]
    assert nonce == NONCE
    assert AESGCM(KEY).decrypt(nonce, sealed, None) == plain.encode()


def test_a_fresh_nonce_each_time() -> None:
    tokens = {cipher.encrypt(KEY, "13800138000") for _ in range(20)}
    assert len(tokens) == 20
    assert {cipher.decrypt(KEY, t) for t in tokens} == {"13800138000"}


def _flip(token: str, index: int) -> str:
    raw = bytearray(base64.b64decode(token))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    "index", [0, 11, 12, -17, -1], ids=["nonce", "nonce end", "text", "text end", "tag"]
)
def test_a_tampered_token_does_not_decrypt(index: int) -> None:
    with pytest.raises(Undecryptable):
        cipher.decrypt(KEY, _flip(KNOWN_TOKEN, index))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "13800138000",  # plain text where cipher text belongs
        "not base64!",
        KNOWN_TOKEN.replace("/", "_"),  # url-safe alphabet: not the format
        cipher.encrypt(KEY, "1380013800").rstrip("="),  # padding dropped
        base64.b64encode(b"x" * 27).decode(),  # shorter than nonce and tag
        KNOWN_TOKEN[:-4],  # truncated tag
    ],
)
def test_garbage_does_not_decrypt(token: str) -> None:
    with pytest.raises(Undecryptable):
        cipher.decrypt(KEY, token)


def test_another_key_does_not_decrypt() -> None:
    with pytest.raises(Undecryptable):
        cipher.decrypt(cipher.new_key(), KNOWN_TOKEN)


def test_text_that_is_not_utf8_inside_does_not_decrypt() -> None:
    raw = AESGCM(KEY).encrypt(NONCE, b"\xff\xfe", None)
    with pytest.raises(Undecryptable):
        cipher.decrypt(KEY, base64.b64encode(NONCE + raw).decode())


def test_keys_as_text() -> None:
    key = cipher.new_key()
    assert len(key) == 32
    text = cipher.key_text(key)
    assert len(text) == 44 and cipher.key_from_text(text) == key
    with pytest.raises(ValueError):
        cipher.key_from_text(base64.b64encode(b"short").decode())


ROTATED = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
GRACE = timedelta(hours=24)


def _ring() -> tuple[Keyring, bytes, bytes]:
    old, new = cipher.new_key(), cipher.new_key()
    return Keyring(current=new, previous=old, rotated_at=ROTATED, grace=GRACE), old, new


def test_the_previous_key_decrypts_within_the_grace_only() -> None:
    ring, old, new = _ring()
    by_old = cipher.encrypt(old, "13800138000")
    assert ring.decrypt(by_old, now=ROTATED) == "13800138000"
    assert ring.decrypt(by_old, now=ROTATED + GRACE - timedelta(seconds=1)) == "13800138000"
    for after in (ROTATED + GRACE, ROTATED + GRACE + timedelta(days=30)):
        with pytest.raises(Undecryptable):
            ring.decrypt(by_old, now=after)
    assert ring.previous_valid_until() == ROTATED + GRACE
    # The current key decrypts whenever; outputs are made with it.
    far = ROTATED + timedelta(days=365)
    assert ring.decrypt(cipher.encrypt(new, "x"), now=far) == "x"
    assert cipher.decrypt(new, ring.encrypt("13800138000")) == "13800138000"


def test_a_ring_without_a_previous_key() -> None:
    key = cipher.new_key()
    ring = Keyring(current=key)
    assert ring.previous_valid_until() is None
    with pytest.raises(Undecryptable):
        ring.decrypt(cipher.encrypt(cipher.new_key(), "x"), now=ROTATED)
