"""Outbound URLs a retailer sets (the nudge webhook) must lead to the public internet.

Otherwise a retailer could make our worker POST to our own machine, the private network or the
cloud's metadata service (SSRF). A URL is checked when it is saved (a 422 that says why) and
again right before every request, against what its host resolves to then: DNS can change after
the save. The request then goes to the address that was checked (the host name kept for the
``Host`` header and TLS), so a second, different answer from DNS cannot slip in between.
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
}


class UnsafeUrl(ValueError):
    """The URL leads somewhere a retailer must not send our requests."""


@dataclass(frozen=True)
class PinnedUrl:
    """Where to send the request: the checked address in place of the host name."""

    url: str
    host_header: str  # the host (and port) as the URL named it
    server_name: str  # for TLS: the certificate is checked against the name, not the address


def refusal(address: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why requests may not go to ``address``; None if they may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return "a reserved address"
    if not address.is_global:
        return "a non-public address"
    return None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise UnsafeUrl(f"its host {host!r} does not resolve ({err})") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]


async def check_outbound_url(url: str, *, allow_loopback: bool = False) -> PinnedUrl:
    """The URL pinned to a checked address; ``UnsafeUrl`` (saying why) if it is refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrl("it must be an http or https URL with a host")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl("its port is not a number from 0 to 65535") from None
    addresses = await _resolve(host, port)
    if not addresses:
        raise UnsafeUrl(f"its host {host!r} does not resolve")
    for address in addresses:
        why = refusal(address, allow_loopback=allow_loopback)
        if why is not None:
            raise UnsafeUrl(f"its host {host!r} resolves to {address}, {why}")
    chosen = addresses[0]
    literal = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return PinnedUrl(url=pinned, host_header=parts.netloc.rsplit("@", 1)[-1], server_name=host)
