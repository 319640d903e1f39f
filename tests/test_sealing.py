"""Secrets at rest: sealed under the server key, bound to their owner and purpose."""

from __future__ import annotations

import uuid

import pytest

from highseas import sealing

KEY = "k" * 48
OWNER = uuid.uuid4().bytes
PURPOSE = sealing.CALLBACK_SECRET


def test_round_trip_and_fresh_nonces() -> None:
    first = sealing.seal(KEY, "whsec_abc", owner=OWNER, purpose=PURPOSE)
    second = sealing.seal(KEY, "whsec_abc", owner=OWNER, purpose=PURPOSE)
    assert first != second
    assert "whsec_abc" not in first
    assert first.startswith("v1.")
    assert sealing.unseal(KEY, first, owner=OWNER, purpose=PURPOSE) == "whsec_abc"


def test_a_value_sealed_before_purposes_existed_still_opens() -> None:
    """Sealed by the callbacks-only helper this module replaced: stored secrets stay readable."""
    owner = uuid.UUID("0190a5c2-8a3e-7000-8000-000000000001").bytes
    stored = "v1.t2Wlaeplo6LsKrJSImZRXn9bns6EtY6lJS3z4XhJnfxuzYq49w=="
    assert sealing.unseal(KEY, stored, owner=owner, purpose=sealing.CALLBACK_SECRET) == "whsec_abc"


@pytest.mark.parametrize(
    ("key", "owner", "purpose"),
    [
        ("another server key of enough length 0123456789", OWNER, PURPOSE),
        (KEY, uuid.uuid4().bytes, PURPOSE),
        (KEY, OWNER, sealing.ENCRYPTION_KEY),
    ],
    ids=["other server key", "other owner", "other purpose"],
)
def test_does_not_open_elsewhere(key: str, owner: bytes, purpose: bytes) -> None:
    sealed = sealing.seal(KEY, "whsec_abc", owner=OWNER, purpose=PURPOSE)
    with pytest.raises(sealing.Unsealable):
        sealing.unseal(key, sealed, owner=owner, purpose=purpose)


@pytest.mark.parametrize("sealed", ["v1.AAAA", "v1.not base64!", "v2.abc", ""])
def test_garbage_does_not_open(sealed: str) -> None:
    with pytest.raises(sealing.Unsealable):
        sealing.unseal(KEY, sealed, owner=OWNER, purpose=PURPOSE)


def test_an_altered_value_does_not_open() -> None:
    sealed = sealing.seal(KEY, "whsec_abc", owner=OWNER, purpose=PURPOSE)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(sealing.Unsealable):
        sealing.unseal(KEY, flipped, owner=OWNER, purpose=PURPOSE)
