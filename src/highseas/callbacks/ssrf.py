"""The SSRF guard: which callback URLs may be called, and at which address (contract §3).

A URL must be http or https with a host. The host is resolved and every address it resolves
to must be a public unicast address: loopback, private, link-local, multicast, reserved,
unspecified and other non-global addresses are refused, also when they hide inside an IPv6
address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, the NAT64 well-known prefix). Every address
is checked, not just the first, so a name that resolves to a public and a private address is
refused. The caller then connects to one of the checked addresses (``pinned``), never
resolving the name again, so the answer cannot change between the check and the connection
(DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

# Checked in this order: an address is named by the first class it belongs to (::1 is also
# "reserved", 127.0.0.1 also "private").
_REFUSED_CLASSES = (
    ("is_unspecified", "未指定地址"),
    ("is_loopback", "回环地址"),
    ("is_link_local", "链路本地地址"),
    ("is_multicast", "组播地址"),
    ("is_reserved", "保留地址"),
    ("is_private", "内网地址"),
)


class UrlRefused(Exception):
    """A callback URL that may not be called; ``reason`` is the error envelope's reason.

    ``message`` quotes the URL, for the client that gives it; ``why`` does not, for what is
    logged and recorded at send time: receivers put tokens in their URLs."""

    def __init__(self, reason: str, url: str | httpx.URL, why: str) -> None:
        super().__init__(why)
        self.reason = reason
        self.why = f"回调地址{why}"
        self.message = f"回调地址 {url} {why}"


def parse(url: str) -> httpx.URL:
    # httpx takes a space (and encodes it) and any port number: neither is a URL to store.
    if any(character.isspace() for character in url):
        raise UrlRefused("callback_url_invalid", url, "无效：不能包含空白字符")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UrlRefused("callback_url_invalid", url, "不是合法的 URL") from exc
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise UrlRefused("callback_url_invalid", url, f"无效：端口 {parsed.port} 不在 1–65535 之间")
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise UrlRefused("callback_url_invalid", url, "无效：只支持 http 和 https 地址")
    if not parsed.raw_host:
        raise UrlRefused("callback_url_invalid", url, "无效：缺少主机名")
    return parsed


def refused_class(address: IPAddress) -> str | None:
    """The name of the refused class ``address`` belongs to, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            # The socket reaches exactly the mapped IPv4 address: judge that one.
            return refused_class(address.ipv4_mapped)
        embedded = _embedded_ipv4(address)
        if embedded is not None and (label := refused_class(embedded)) is not None:
            return label
    for attribute, label in _REFUSED_CLASSES:
        if getattr(address, attribute):
            return label
    if not address.is_global:
        return "非公网地址"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4 or NAT64 address is routed to."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def resolve(url: httpx.URL, *, allow_private: bool) -> list[IPAddress]:
    """Every address ``url``'s host resolves to, in the resolver's order, all of them checked.

    Raises ``UrlRefused`` when the host does not resolve or (unless ``allow_private``) when any
    address is refused.
    """
    host = url.raw_host.decode("ascii")
    addresses = await _addresses(url, host)
    if not allow_private:
        for address in addresses:
            label = refused_class(address)
            if label is not None:
                raise UrlRefused(
                    "callback_url_forbidden",
                    url,
                    f"不允许：{host} 指向{label} {address}，回调地址必须是公网地址",
                )
    return addresses


async def _addresses(url: httpx.URL, host: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        # getaddrinfo blocks; the loop runs it in its default thread pool.
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused("callback_url_unresolvable", url, f"无法解析：找不到主机 {host}") from exc
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        # A scoped IPv6 address comes back as "fe80::1%eth0".
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


@dataclass(frozen=True)
class PinnedRequest:
    """Where to connect (a checked address) and what to tell the server (the original name)."""

    url: httpx.URL
    host_header: str
    extensions: dict[str, str]


def pinned(url: httpx.URL, address: IPAddress) -> PinnedRequest:
    """A request to ``url`` that connects to ``address``.

    The Host header keeps the original name and port. For https the TLS server name (SNI)
    is the original name too, and the certificate is verified against it, not the address.
    """
    extensions: dict[str, str] = {}
    host = url.raw_host.decode("ascii")
    if url.scheme == "https" and not _is_ip_literal(host):
        extensions["sni_hostname"] = host
    return PinnedRequest(
        url=url.copy_with(host=str(address)),
        host_header=url.netloc.decode("ascii"),
        extensions=extensions,
    )


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
