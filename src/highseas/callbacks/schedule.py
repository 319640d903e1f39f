"""When to try a callback again: ``HIGHSEAS_CALLBACK_RETRY_SCHEDULE`` plus jitter."""

from __future__ import annotations

import random
from collections.abc import Sequence

# Up to 10% later than scheduled, never earlier: callbacks that failed together (a receiver's
# outage) spread out instead of retrying in one burst, and no retry comes before its time.
JITTER = 0.1


def retry_delay(
    schedule: Sequence[float], attempt: int, *, rng: random.Random | None = None
) -> float | None:
    """Seconds to wait after failed attempt ``attempt`` (1-based), or None when none is left.

    ``schedule[i]`` is the wait after attempt ``i + 1``, so a message gets at most
    ``len(schedule) + 1`` attempts.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be at least 1, got {attempt}")
    if attempt > len(schedule):
        return None
    nominal = float(schedule[attempt - 1])  # settings refuse negative waits
    # Jitter spreads load and protects no secret: the shared PRNG is the right tool.
    uniform = rng.uniform if rng is not None else random.uniform
    return uniform(nominal, nominal * (1 + JITTER))
