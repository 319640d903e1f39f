from __future__ import annotations

import random

import pytest

from highseas.jobs.backoff import retry_delay


def test_grows_exponentially_within_its_jitter_band() -> None:
    for attempt, nominal in [(1, 5), (2, 10), (3, 20), (4, 40), (8, 640)]:
        for _ in range(200):
            assert nominal / 2 <= retry_delay(attempt) <= nominal


def test_cap_is_a_hard_ceiling() -> None:
    delays = [retry_delay(attempt) for attempt in range(12, 40) for _ in range(50)]
    assert max(delays) <= 3600
    assert min(delays) >= 1800
    assert retry_delay(10_000, base=1, cap=60) <= 60


def test_custom_base_and_cap() -> None:
    assert 0.05 <= retry_delay(1, base=0.1, cap=30) <= 0.1
    assert 15 <= retry_delay(20, base=0.1, cap=30) <= 30


def test_jitter_spreads_delays() -> None:
    delays = {retry_delay(3) for _ in range(100)}
    assert len(delays) > 90
    assert min(delays) < 12 and max(delays) > 18


def test_seeded_rng_is_deterministic() -> None:
    first = [retry_delay(n, rng=random.Random(7)) for n in range(1, 10)]
    second = [retry_delay(n, rng=random.Random(7)) for n in range(1, 10)]
    assert first == second


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_count_from_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        retry_delay(attempt)
