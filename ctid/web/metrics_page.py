"""`GET /metrics`: the daemon's registry in Prometheus text format (prometheus_client writes it),
for scrapers whose address is in `metrics.allow` or that send the bearer `metrics.token`."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Protocol

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ctid.config import MetricsConfig
from ctid.web.proxy import client_ip

log = structlog.get_logger(__name__)

_REFUSALS_LOGGED = 64
"""Refused clients remembered so a scraper retrying every 15 s is logged once, not forever."""


class MetricsSource(Protocol):
    """The daemon's metrics (`ctid.metrics.Metrics` fits): refresh the scrape-time readings,
    then expose the registry."""

    @property
    def registry(self) -> CollectorRegistry: ...

    async def refresh(self) -> None: ...


class MetricsPage:
    def __init__(
        self, cfg: MetricsConfig, trusted_proxies: tuple[str, ...], source: MetricsSource
    ) -> None:
        self._source = source
        self._trusted = trusted_proxies
        self._nets = tuple(ipaddress.ip_network(n, strict=False) for n in cfg.allow)
        token = cfg.token.get_secret_value()
        self._token = token.encode("utf-8") if token else None
        self._refused: dict[str, None] = {}

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/metrics", self._metrics)

    def allowed(self, request: web.Request) -> bool:
        """The client's address is in `allow`, or it sent `Authorization: Bearer <token>`."""
        if self._token is not None:
            scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                sent.strip().encode("utf-8", "replace"), self._token
            ):
                return True
        try:
            ip = ipaddress.ip_address(client_ip(request, self._trusted))
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack listener shows IPv4 peers as ::ffff:a.b.c.d
        return any(ip in net for net in self._nets)

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        if not self.allowed(request):
            client = client_ip(request, self._trusted)
            if client not in self._refused:
                log.warning("metrics_scrape_refused", client=client)
                self._refused[client] = None
                while len(self._refused) > _REFUSALS_LOGGED:
                    del self._refused[next(iter(self._refused))]
            return web.Response(status=403, text="metrics: not allowed from here\n")
        await self._source.refresh()
        return web.Response(
            body=generate_latest(self._source.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )
