"""Retry delays: exponential growth, a hard cap, and jitter so failures do not retry in step."""

from __future__ import annotations

import random

# 2**62 is far past any useful delay; capping the exponent keeps the product a finite float.
_MAX_EXPONENT = 62


def retry_delay(
    attempt: int, *, base: float = 5, cap: float = 3600, rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based) before the next one.

    The nominal delay is ``base · 2^(attempt-1)``, capped at ``cap``; the result is drawn
    uniformly from [nominal/2, nominal] ("equal jitter"). Half the delay is kept so that retries
    still back off, the other half is random so that jobs which failed together (an outage of
    a partner's server) spread out instead of hitting it again in one burst. ``cap`` is a hard
    ceiling: no delay ever exceeds it.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be at least 1, got {attempt}")
    if base <= 0 or cap <= 0:
        raise ValueError("base and cap must be positive")
    nominal = min(cap, base * 2 ** min(attempt - 1, _MAX_EXPONENT))
    # Jitter spreads load and protects no secret: the shared PRNG is the right tool.
    uniform = rng.uniform if rng is not None else random.uniform
    return uniform(nominal / 2, nominal)
