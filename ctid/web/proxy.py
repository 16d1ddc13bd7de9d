"""The client's address behind a reverse proxy: `X-Forwarded-For` is believed only from the
proxies listed in `web.trusted_proxies` (login throttling and audit lines use this address)."""

from __future__ import annotations

import functools
import ipaddress

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def _is_trusted(address: str, nets: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in nets)


def client_ip(request: web.Request, trusted: tuple[str, ...]) -> str:
    """The peer, or — when the peer is a trusted proxy — the right-most address in
    X-Forwarded-For that is not itself a trusted proxy (the left part can be forged by clients)."""
    peer = request.remote or "-"
    nets = _networks(trusted)
    if not nets or not _is_trusted(peer, nets):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _is_trusted(hop, nets):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage in the header: fall back to what we know
    return peer
