"""Retry delays: the configured schedule, up to 10% later, never earlier."""

from __future__ import annotations

import random

import pytest

from highseas.callbacks.schedule import JITTER, retry_delay

SCHEDULE = [5, 300, 1800]


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_each_delay_is_its_slot_plus_jitter(attempt: int) -> None:
    rng = random.Random(attempt)
    nominal = SCHEDULE[attempt - 1]
    delays = [retry_delay(SCHEDULE, attempt, rng=rng) for _ in range(200)]
    assert all(d is not None and nominal <= d <= nominal * (1 + JITTER) for d in delays)
    assert len(set(delays)) > 1


def test_the_schedule_runs_out() -> None:
    assert retry_delay(SCHEDULE, 4) is None
    assert retry_delay([], 1) is None


def test_zero_means_at_once() -> None:
    assert retry_delay([0, 0], 2) == 0


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        retry_delay(SCHEDULE, 0)
