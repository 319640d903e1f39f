"""One HTTP attempt at a callback: check the address, POST the signed body, note the answer.

Never raises for what the receiver or the network does: every outcome, including a refused
address and a timeout, comes back as an ``Outcome`` to be logged as an attempt.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from highseas import __version__
from highseas.callbacks import signing, ssrf
from highseas.clock import utcnow
from highseas.metrics import CALLBACK_ATTEMPTS, CallbackOutcome

# What the attempt log keeps of an answer (contract §3: the first 1 KB).
RESPONSE_LIMIT = 1024
ERROR_LIMIT = 1000


@dataclass(frozen=True)
class Outgoing:
    """A message ready to be sent to the URL configured at send time."""

    message_id: str
    url: str
    body: bytes
    secrets: Sequence[str] = field(repr=False)


@dataclass(frozen=True)
class Outcome:
    at: datetime
    duration_ms: int
    status_code: int | None = None
    response: str | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def send(
    outgoing: Outgoing,
    *,
    timeout_seconds: float,
    allow_private: bool,
    verify: ssl.SSLContext | bool = True,
) -> Outcome:
    """POST ``outgoing``; the whole attempt, resolving the host included, has ``timeout_seconds``.

    ``verify`` is the TLS trust (a test passes the context that trusts its own CA).
    """
    at = utcnow()
    started = time.monotonic()
    status_code: int | None = None
    response: str | None = None
    error: str | None = None
    counted = CallbackOutcome.DELIVERED
    try:
        async with asyncio.timeout(timeout_seconds):
            status_code, response = await _post(outgoing, allow_private, verify, timeout_seconds)
    except TimeoutError:
        error = f"超时：{timeout_seconds:g} 秒内没有完成"
        counted = CallbackOutcome.TIMEOUT
    except ssrf.UrlRefused as exc:
        error = _clip(exc.why)  # logged: without the URL and the tokens it may carry
        counted = CallbackOutcome.BLOCKED
    except httpx.HTTPError as exc:
        error = _clip(f"请求失败：{type(exc).__name__}: {exc}")
        counted = CallbackOutcome.NETWORK_ERROR
    if status_code is not None and not 200 <= status_code < 300:
        error = _status_error(status_code)
        counted = CallbackOutcome.HTTP_ERROR
    CALLBACK_ATTEMPTS.labels(counted).inc()
    duration_ms = round((time.monotonic() - started) * 1000)
    return Outcome(
        at=at, duration_ms=duration_ms, status_code=status_code, response=response, error=error
    )


async def _post(
    outgoing: Outgoing, allow_private: bool, verify: ssl.SSLContext | bool, timeout_seconds: float
) -> tuple[int, str]:
    url = ssrf.parse(outgoing.url)
    addresses = await ssrf.resolve(url, allow_private=allow_private)
    timestamp = int(utcnow().timestamp())
    headers = {
        **signing.headers(outgoing.secrets, outgoing.message_id, timestamp, outgoing.body),
        "content-type": "application/json",
        "user-agent": f"highseas/{__version__}",
    }
    # trust_env=False: an HTTP(S)_PROXY in the environment would connect on our behalf,
    # to an address nobody checked.
    async with httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        verify=_default_trust() if verify is True else verify,
        timeout=timeout_seconds,
    ) as client:
        for index, address in enumerate(addresses):
            target = ssrf.pinned(url, address)
            request = client.build_request(
                "POST",
                target.url,
                content=outgoing.body,
                headers={**headers, "host": target.host_header},
                extensions=target.extensions,
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.ConnectError:
                # Every address was checked; like a browser, try the next one.
                if index == len(addresses) - 1:
                    raise
                continue
            try:
                return response.status_code, await _head(response)
            finally:
                await response.aclose()
    raise AssertionError("resolve() returns at least one address")


@functools.cache
def _default_trust() -> ssl.SSLContext:
    # What httpx builds for verify=True, built once: loading the CA bundle takes ~50 ms of
    # CPU, which per attempt stalled the event loop that `serve` shares with the API.
    return httpx.create_ssl_context(trust_env=False)


async def _head(response: httpx.Response) -> str:
    """The first ``RESPONSE_LIMIT`` bytes of the body, without reading the rest."""
    kept = b""
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) >= RESPONSE_LIMIT:
            break
    return kept[:RESPONSE_LIMIT].decode("utf-8", errors="replace")


def _status_error(status_code: int) -> str:
    if 300 <= status_code < 400:
        return f"接收方返回 HTTP {status_code}（不跟随重定向）"
    return f"接收方返回 HTTP {status_code}"


def _clip(text: str) -> str:
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"
