"""No forwarding loops: an upstream that is serve itself is refused at start-up, and every
forwarded request carries a hop header, so one that comes back through any chain of proxies
is answered 508 instead of being forwarded again.

The classic loop: a shell exports `ANTHROPIC_BASE_URL=http://127.0.0.1:8787` for Claude
Code, and serve, started in that shell, reads the same variable as its upstream.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from urllib.parse import urlsplit

# Each serve instance (all its workers) appends its id; the list travels through any proxy
# that passes unknown headers on, as HTTP proxies do.
VIA_HEADER = "x-policyroute-via"
# A chain longer than this is a loop whose ids changed (restarts) or a misconfiguration.
MAX_HOPS = 8


def new_instance_id() -> str:
    return uuid.uuid4().hex[:16]


def _addresses(host: str, port: int) -> set[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return set()
    return {str(info[4][0]).split("%")[0] for info in infos}


def _local_addresses() -> set[str]:
    """Addresses of this machine a wildcard bind listens on (loopback and its own names)."""
    out = {"127.0.0.1", "::1"}
    for name in (socket.gethostname(), socket.getfqdn()):
        out |= _addresses(name, 0)
    return out


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return host == ""


def points_at_self(upstream: str, host: str, port: int) -> bool:
    """Whether `upstream` reaches the address serve listens on (`host`:`port`)."""
    parts = urlsplit(upstream)
    try:
        up_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    if up_port != port or not parts.hostname:
        return False
    up = _addresses(parts.hostname, up_port)
    if not up:
        return False
    if _is_wildcard(host):
        local = _local_addresses()
        return any(a in local or ipaddress.ip_address(a).is_loopback for a in up)
    return bool(up & _addresses(host.strip("[]"), port))


def hops(value: str | None) -> list[str]:
    if not value:
        return []
    return [h.strip() for h in value.split(",") if h.strip()]


def loop_reason(value: str | None, instance: str) -> str | None:
    """Why a request with this hop header must not be forwarded, or None."""
    seen = hops(value)
    if instance in seen:
        return (
            "forwarding loop: this request already passed through this policyroute server; "
            "its upstream leads back to it (check --upstream and ANTHROPIC_BASE_URL)"
        )
    if len(seen) >= MAX_HOPS:
        return f"forwarding loop: the request passed through {len(seen)} policyroute servers"
    return None


def via_value(value: str | None, instance: str) -> str:
    """The hop header to send upstream: the hops so far and this server."""
    return ", ".join([*hops(value), instance])
