"""The address guard: wanflow posts webhooks only to the public internet.

What is guaranteed: outside the local stack, only HTTPS is posted, and only to a host whose
every address is public. Loopback, private, link-local, multicast, reserved, unspecified and
other non-global addresses are refused, also when carried inside IPv6 (IPv4-mapped, 6to4,
Teredo). The connection is then pinned to the address that was checked, the name kept for the
Host header and TLS, so a DNS answer that changes between the check and the connection (DNS
rebinding) cannot send the request to an internal address. The local stack (`allow_local`)
also lets plain http and loopback addresses through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

#: Every address a host name resolves to, given the host and port; OSError when it does not.
Resolver = Callable[[str, int], list[str]]


class Refused(Exception):
    """The URL is not one wanflow posts to."""


def address_refusal(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why wanflow will not post to an IP address (e.g. "private"), or None for a public one.

    IPv4 addresses carried inside IPv6 (mapped, 6to4, Teredo) are judged as the IPv4 address.
    """
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]  # an IPv6 zone id
    )
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            ip = embedded
    if ip.is_loopback:
        return None if allow_loopback else "loopback"
    for why, hit in (
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),
    ):
        if hit:
            return why
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address a host name resolves to (OSError when it does not)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Destination:
    """Where to connect for a URL: the checked address, with the name kept for Host and TLS."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


def destination(url: str, *, allow_local: bool, resolver: Resolver = resolve) -> Destination:
    """The connection to make for a webhook URL, pinned to an address that passed the guard.

    Raises Refused for a URL or address wanflow will not post to, OSError when the name does not
    resolve. Pinning means a DNS answer that changes between the check and the connection (DNS
    rebinding) cannot redirect the request to an internal address.
    """
    parsed = httpx.URL(url)
    if parsed.scheme != "https" and not (allow_local and parsed.scheme == "http"):
        raise Refused("not an HTTPS URL")
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = resolver(host, port)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    for address in addresses:
        why = address_refusal(address, allow_loopback=allow_local)
        if why:
            raise Refused(f"{host} resolves to a {why} address ({address})")
    pinned = addresses[0]
    if pinned == host:
        return Destination(url, {}, {})
    extensions: dict[str, Any] = {"sni_hostname": host} if parsed.scheme == "https" else {}
    netloc = parsed.netloc.decode("ascii")
    return Destination(str(parsed.copy_with(host=pinned)), {"Host": netloc}, extensions)
