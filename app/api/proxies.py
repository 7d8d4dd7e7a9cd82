"""Which peers may speak for the client through ``X-Forwarded-*`` (``TRUSTED_PROXIES``).

A forwarded header is only as honest as whoever sent it: from an arbitrary client it is a
lie the client chose (a captured Twilio signature for another host "passes" if the client
may pick the host). So the direct peer's address is recorded here, before anything else
reads the headers, and only peers in ``TRUSTED_PROXIES`` (addresses or networks) have
their ``X-Forwarded-Proto`` / ``-For`` applied, by uvicorn's own ``ProxyHeadersMiddleware``
given the same list. ``python -m app`` turns uvicorn's built-in copy of that middleware off
(it trusts 127.0.0.1 by default), so this list is the only one.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(value: str) -> tuple[bool, list[Network]]:
    """(trust everyone, networks) from ``TRUSTED_PROXIES``; bad entries raise ValueError."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    if "*" in items:
        return True, []
    return False, [ipaddress.ip_network(item, strict=False) for item in items]


class TrustedProxyMiddleware:
    def __init__(self, app: ASGIApp, *, trusted: str) -> None:
        self.any, self.networks = parse_proxies(trusted)
        hosts = "*" if self.any else [str(n) for n in self.networks] or [""]
        self.inner = ProxyHeadersMiddleware(app, trusted_hosts=hosts)  # type: ignore[arg-type]

    def trusts(self, host: str | None) -> bool:
        if self.any:
            return True
        if not host or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False  # a unix socket path or a name: not a configured proxy
        return any(address in net for net in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            scope.setdefault("state", {})["via_trusted_proxy"] = self.trusts(
                client[0] if client else None)
        await self.inner(scope, receive, send)  # type: ignore[arg-type]
