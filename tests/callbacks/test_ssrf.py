"""The SSRF guard: which addresses are refused, resolution, and the pinned request."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from highseas.callbacks import ssrf
from tests.callbacks.addresses import PUBLIC, REFUSED


@pytest.mark.parametrize(("address", "label"), REFUSED)
def test_refused_classes(address: str, label: str) -> None:
    assert ssrf.refused_class(ipaddress.ip_address(address)) == label


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert ssrf.refused_class(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        *("ftp://example.com/x", "javascript:alert(1)", "http:///x", "//example.com/x", "x"),
        *("https://1.1.1.1:99999/", "http://1.1.1.1:0/", "http://1.1.1.1/ x", "http://a\tb/"),
    ],
)
def test_only_well_formed_http_and_https_with_a_host(url: str) -> None:
    with pytest.raises(ssrf.UrlRefused) as refused:
        ssrf.parse(url)
    assert refused.value.reason == "callback_url_invalid"
    assert url in refused.value.message


@pytest.mark.parametrize(("address", "label"), REFUSED)
async def test_literal_addresses_are_refused(address: str, label: str) -> None:
    host = f"[{address}]" if ":" in address else address
    url = ssrf.parse(f"http://{host}:8080/hook")
    with pytest.raises(ssrf.UrlRefused) as refused:
        await ssrf.resolve(url, allow_private=False)
    assert refused.value.reason == "callback_url_forbidden"
    assert label in refused.value.message


async def test_names_are_resolved_before_the_check() -> None:
    with pytest.raises(ssrf.UrlRefused) as refused:
        await ssrf.resolve(ssrf.parse("http://localhost:8080/hook"), allow_private=False)
    assert refused.value.reason == "callback_url_forbidden"
    assert "回环地址" in refused.value.message
    # Numeric host forms the resolver accepts are checked as what they resolve to.
    for tricky in ("http://2130706433/", "http://0x7f.1/", "http://127.1/"):
        with pytest.raises(ssrf.UrlRefused):
            await ssrf.resolve(ssrf.parse(tricky), allow_private=False)


async def test_allowed_private_addresses_still_resolve() -> None:
    addresses = await ssrf.resolve(ssrf.parse("http://localhost:8080/"), allow_private=True)
    assert addresses and all(a.is_loopback for a in addresses)


@pytest.mark.parametrize("host", ["no-such-host.invalid", "a" * 64 + ".com"])
async def test_a_host_that_does_not_resolve_is_refused(host: str) -> None:
    with pytest.raises(ssrf.UrlRefused) as refused:
        await ssrf.resolve(ssrf.parse(f"http://{host}/"), allow_private=True)
    assert refused.value.reason == "callback_url_unresolvable"


def test_pinned_http_keeps_the_host_header() -> None:
    url = httpx.URL("http://user:pw@receiver.example.com:8080/cb?x=1")
    pinned = ssrf.pinned(url, ipaddress.ip_address("93.184.216.34"))
    assert str(pinned.url) == "http://user:pw@93.184.216.34:8080/cb?x=1"
    assert pinned.host_header == "receiver.example.com:8080"
    assert pinned.extensions == {}


def test_pinned_https_names_the_host_for_sni_and_certificate() -> None:
    url = httpx.URL("https://回调.example.com/cb")
    pinned = ssrf.pinned(url, ipaddress.ip_address("2606:4700:4700::1111"))
    assert str(pinned.url) == "https://[2606:4700:4700::1111]/cb"
    ascii_name = "回调.example.com".encode("idna").decode()
    assert pinned.host_header == ascii_name
    assert pinned.extensions == {"sni_hostname": ascii_name}


def test_pinned_https_to_a_literal_address_sends_no_sni() -> None:
    url = httpx.URL("https://93.184.216.34/cb")
    assert ssrf.pinned(url, ipaddress.ip_address("93.184.216.34")).extensions == {}
