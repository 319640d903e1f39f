"""Secrets at rest: sealed under the server key, bound to their owner."""

from __future__ import annotations

import uuid

import pytest

from highseas.callbacks import sealing

KEY = "k" * 48
OWNER = uuid.uuid4().bytes


def test_round_trip_and_fresh_nonces() -> None:
    first = sealing.seal(KEY, "whsec_abc", owner=OWNER)
    second = sealing.seal(KEY, "whsec_abc", owner=OWNER)
    assert first != second
    assert "whsec_abc" not in first
    assert first.startswith("v1.")
    assert sealing.unseal(KEY, first, owner=OWNER) == "whsec_abc"


@pytest.mark.parametrize(
    ("key", "owner"),
    [("another server key of enough length 0123456789", OWNER), (KEY, uuid.uuid4().bytes)],
    ids=["other server key", "other owner"],
)
def test_does_not_open_elsewhere(key: str, owner: bytes) -> None:
    sealed = sealing.seal(KEY, "whsec_abc", owner=OWNER)
    with pytest.raises(sealing.Unsealable):
        sealing.unseal(key, sealed, owner=owner)


@pytest.mark.parametrize("sealed", ["v1.AAAA", "v1.not base64!", "v2.abc", ""])
def test_garbage_does_not_open(sealed: str) -> None:
    with pytest.raises(sealing.Unsealable):
        sealing.unseal(KEY, sealed, owner=OWNER)


def test_an_altered_value_does_not_open() -> None:
    sealed = sealing.seal(KEY, "whsec_abc", owner=OWNER)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(sealing.Unsealable):
        sealing.unseal(KEY, flipped, owner=OWNER)
