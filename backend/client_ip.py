"""The client's address, trusting X-Forwarded-For only from our own proxies."""

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def resolve_client_ip(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str:
    """The first address, walking X-Forwarded-For from the right, not one of our proxies.

    A peer outside `trusted` is the client, whatever headers it sends: anyone can forge
    X-Forwarded-For, so it is read only when our own proxy appended to it.
    """
    client = peer or "unknown"
    if not forwarded_for or not _is_trusted(client, trusted):
        return client
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return client
        client = hop
        if not _is_trusted(hop, trusted):
            return hop
    return client


def client_ip_of(scope: Scope, trusted: Sequence[Network]) -> str:
    """The client address of an ASGI request; several X-Forwarded-For lines read as one."""
    peer = scope.get("client")
    forwarded = ",".join(
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"
    )
    return resolve_client_ip(peer[0] if peer else None, forwarded or None, trusted)
