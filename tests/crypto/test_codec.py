"""The codec a request applies to its phones: plain, or decrypt in and encrypt out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from highseas.crypto import cipher
from highseas.crypto.codec import PLAIN, Codec
from highseas.errors import ValidationFailed

KEY = cipher.new_key()
NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def test_plain_passes_text_through() -> None:
    assert not PLAIN.active
    assert PLAIN.encrypt("13800138000") == "13800138000"
    assert PLAIN.decrypt("phone", "13800138000") == "13800138000"
    assert PLAIN.open("anything") == "anything"


def test_active_decrypts_inputs_and_encrypts_outputs() -> None:
    codec = Codec(cipher.Keyring(KEY), now=NOW)
    assert codec.active
    assert codec.decrypt("phone", cipher.encrypt(KEY, "13800138000")) == "13800138000"
    assert cipher.decrypt(KEY, codec.encrypt("13800138000")) == "13800138000"


def test_undecryptable_input_is_422_naming_the_field_and_showing_only_what_was_sent() -> None:
    codec = Codec(cipher.Keyring(KEY), now=NOW)
    other = cipher.encrypt(cipher.new_key(), "13800138000")
    assert codec.open(other) is None
    with pytest.raises(ValidationFailed) as raised:
        codec.decrypt("phone.3", other)
    error = raised.value
    assert (error.status_code, error.reason) == (422, "undecryptable")
    assert list(error.errors) == ["phone.3"]
    assert "phone.3" in error.message and other in error.message
    assert "13800138000" not in error.message
    long_garbage = "A" * 500
    with pytest.raises(ValidationFailed) as raised:
        codec.decrypt("phone", long_garbage)
    assert len(raised.value.message) < 200
