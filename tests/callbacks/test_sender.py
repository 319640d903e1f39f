"""One attempt over real sockets: the checked address is the one connected to, TLS included."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from highseas.callbacks import ssrf
from highseas.callbacks.sender import Outgoing, send
from highseas.callbacks.signing import new_secret
from tests.callbacks.certificates import Authority
from tests.fixtures.receiver import Receiver

_real_getaddrinfo = socket.getaddrinfo


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """DNS for ``*.test`` names: 127.0.0.1, except ``rebind.test`` (public, then loopback)."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".test"):
            asked.append(host)
            found = ["93.184.216.34", "127.0.0.1"] if host == "rebind.test" else ["127.0.0.1"]
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in found
            ]
        return _real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield asked


def _outgoing(url: str) -> Outgoing:
    return Outgoing(message_id="msg_test", url=url, body=b"{}", secrets=[new_secret()])


async def test_the_connection_goes_to_the_checked_address(lookups: list[str]) -> None:
    with Receiver().running() as receiver:
        outcome = await send(
            _outgoing(receiver.url(host="receiver.test")), timeout_seconds=2, allow_private=True
        )
    assert outcome.status_code == 200, outcome.error
    assert lookups == ["receiver.test"]
    [request] = receiver.received
    assert request.headers["host"] == f"receiver.test:{receiver.port}"


async def test_a_name_with_any_refused_address_is_refused(lookups: list[str]) -> None:
    url = ssrf.parse("http://rebind.test/hook")
    with pytest.raises(ssrf.UrlRefused) as refused:
        await ssrf.resolve(url, allow_private=False)
    assert "127.0.0.1" in refused.value.message
    outcome = await send(_outgoing(str(url)), timeout_seconds=2, allow_private=False)
    assert outcome.status_code is None
    assert outcome.error is not None and "回环地址" in outcome.error


async def test_https_keeps_the_name_for_sni_and_the_certificate(
    tmp_path: Path, lookups: list[str]
) -> None:
    authority = Authority(tmp_path)
    with Receiver(tls=authority.server_context("receiver.test")).running() as receiver:
        outcome = await send(
            _outgoing(receiver.url(host="receiver.test")),
            timeout_seconds=2,
            allow_private=True,
            verify=authority.client_context(),
        )
    assert outcome.status_code == 200, outcome.error
    assert receiver.server_names == ["receiver.test"]
    assert receiver.received[0].headers["host"] == f"receiver.test:{receiver.port}"


async def test_https_refuses_a_certificate_for_another_name(
    tmp_path: Path, lookups: list[str]
) -> None:
    authority = Authority(tmp_path)
    with Receiver(tls=authority.server_context("other.test")).running() as receiver:
        outcome = await send(
            _outgoing(receiver.url(host="receiver.test")),
            timeout_seconds=2,
            allow_private=True,
            verify=authority.client_context(),
        )
    assert outcome.status_code is None
    assert outcome.error is not None and "CERTIFICATE_VERIFY_FAILED" in outcome.error
    assert receiver.received == []
