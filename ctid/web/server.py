"""`WebServer`: the aiohttp app that assembles the guards, pages and push sockets around the
features' services (`WebPorts`), and its lifecycle: bind in `__aenter__`, `run()` purges
expired sessions, every socket closed on exit."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog
from aiohttp import web
from yarl import URL

from ctid.accounts.sessions import Authenticator
from ctid.config import Config, WebConfig
from ctid.core.clock import Clock
from ctid.core.errors import CtidError
from ctid.i18n import N_
from ctid.web.call_api import CallApi
from ctid.web.callback_pages import CallbackPages
from ctid.web.caller_profile_pages import CallerProfilePages
from ctid.web.console_pages import ConsolePages
from ctid.web.edge import HttpError, RequestContext, is_api, json_response
from ctid.web.incident_report_pages import IncidentReportPages
from ctid.web.incident_view import IncidentView
from ctid.web.kb_api import RecordApi
from ctid.web.kb_pages import KbPages
from ctid.web.link_pages import LinkPages
from ctid.web.login_pages import LoginPages
from ctid.web.metrics_page import MetricsPage, MetricsSource
from ctid.web.middleware import Guards, context
from ctid.web.ports import (
    CallbackPort,
    CallControlPort,
    CallerPort,
    ConfigSeats,
    DraftPort,
    HealthPort,
    IncidentPort,
    IncidentWorkflowPort,
    LinkPort,
    PushSource,
    ReportsPort,
    RosterPort,
    SeatDirectory,
    SeatStatePort,
    SpyPort,
)
from ctid.web.record_ports import RecordPorts
from ctid.web.report_pages import ReportPages
from ctid.web.roster_pages import RosterPages
from ctid.web.seat_api import SeatApi
from ctid.web.sockets import PushSockets
from ctid.web.wallboard_pages import WallboardPages

log = structlog.get_logger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True, slots=True)
class WebPorts:
    """What the web needs from the features (the composition root wires their services)."""

    hub: PushSource
    incidents: IncidentPort
    callers: CallerPort
    health: HealthPort
    spy: SpyPort | None = None
    seats: SeatDirectory | None = None
    """Default: the seat whose config `staffed_by` is the employee ID."""
    workflow: IncidentWorkflowPort | None = None
    calls: CallControlPort | None = None
    callbacks: CallbackPort | None = None
    links: LinkPort | None = None
    roster: RosterPort | None = None
    reports: ReportsPort | None = None
    seat_states: SeatStatePort | None = None
    drafts: DraftPort | None = None
    records: RecordPorts | None = None
    """Knowledge base, timeline, caller profiles, incident reports."""
    """A port left None turns its pages into a 404 "not available"."""
    metrics: MetricsSource | None = None
    """Served at /metrics when `metrics.enabled`; None (or disabled): /metrics is a 404."""


def resolve_web_secret(web_cfg: WebConfig, data_dir: Path) -> bytes:
    """`web.cookie_secret`, or a random secret generated once and kept in `data_dir/web_secret`
    (mode 0600) so login forms stay valid across restarts."""
    configured = web_cfg.cookie_secret.get_secret_value()
    if configured:
        return configured.encode("utf-8")
    path = data_dir / "web_secret"
    try:
        value = path.read_bytes().strip()
        if len(value) >= 32:
            return value
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise CtidError(f"cannot read {path}: {exc.strerror}") from None
    value = secrets.token_urlsafe(48).encode("ascii")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(value + b"\n")
    except OSError as exc:
        raise CtidError(f"cannot write {path}: {exc.strerror}") from None
    return value


class WebServer:
    """The web edge as an async context manager: binds in `__aenter__` (port 0 picks a free
    port; `port` tells which), `run()` until cancelled, closes every WebSocket on exit.

    A `web.public_url` whose port is 0 means "the port we bound" (tests bind port 0). It is
    also the `Edge` the page modules see."""

    def __init__(
        self,
        config: Config,
        ports: WebPorts,
        *,
        auth: Authenticator,
        clock: Clock,
        secret: bytes | None = None,
        ws_send_timeout_s: float = 10.0,
        ws_heartbeat_s: float = 25.0,
        purge_every_s: float = 900.0,
    ) -> None:
        self._cfg = config
        self._web = config.web
        self._ports = ports
        self._seats: SeatDirectory = ports.seats or ConfigSeats(config.seats)
        self._clock = clock
        self._secret = secret
        self._purge_every = purge_every_s
        self.auth = auth
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._public = URL(self._web.public_url)
        self._guards = Guards(self._web, config.site, auth, self._seats)
        self._sockets = PushSockets(
            ports.hub,
            self._seats,
            clock,
            self._guards.origin_ok,
            send_timeout_s=ws_send_timeout_s,
            heartbeat_s=ws_heartbeat_s,
        )
        self._login = LoginPages(
            self,
            self._web,
            auth,
            session_cookie=self._guards.cookie,
            on_logout=self._sockets.session_ended,
        )
        self._links = LinkPages(self, ports.links, secure_cookies=self._web.secure_cookies)
        self.app = self._build_app()

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        return self._port

    @property
    def public_url(self) -> URL:
        """`web.public_url` with a configured port 0 replaced by the bound port."""
        return self._public

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    async def __aenter__(self) -> Self:
        if self._secret is None:
            self._secret = resolve_web_secret(self._web, self._cfg.site.data_dir)
        self._login.start(self._secret)
        self._links.start(self._secret)
        runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, shutdown_timeout=5.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._web.listen_host, self._web.listen_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        self._port = int(addresses[0][1]) if addresses else self._web.listen_port
        if self._public.port == 0 or self._public.explicit_port == 0:
            self._public = self._public.with_port(self._port)
        self._guards.bind_origin(self._public)
        log.info(
            "web_listening",
            host=self._web.listen_host,
            port=self._port,
            public_url=str(self._public),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close_sockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        log.info("web_stopped")

    async def run(self) -> None:
        """Purge expired sessions now and then, until cancelled."""
        while True:
            try:
                await self.auth.purge_expired()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("web_session_purge_failed")
            await asyncio.sleep(self._purge_every)

    async def close_sockets(self, *, timeout_s: float = 5.0) -> None:
        """Close every WebSocket (code 1001) and wait for their handlers to finish."""
        await self._sockets.close_all(timeout_s=timeout_s)

    # ------------------------------------------------------------------ app

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=self._guards.middlewares(), client_max_size=64 * 1024)
        r = app.router
        ports = self._ports
        self._login.add_routes(r)
        ConsolePages(
            self, self._seats, ports.hub, ports.incidents, ports.callers, ports.spy, ports.drafts
        ).add_routes(r)
        WallboardPages(self, self._seats, ports.spy).add_routes(r)
        records = ports.records or RecordPorts()
        IncidentView(self, ports.workflow, ports.calls, records).add_routes(r)
        RecordApi(self, records).add_routes(r)
        KbPages(self, records).add_routes(r)
        CallerProfilePages(self, records).add_routes(r)
        IncidentReportPages(self, records).add_routes(r)
        CallbackPages(self, ports.callbacks, ports.calls).add_routes(r)
        self._links.add_routes(r)
        RosterPages(self, ports.roster).add_routes(r)
        ReportPages(self, ports.reports).add_routes(r)
        SeatApi(self, self._seats, ports.seat_states).add_routes(r)
        CallApi(self, self._seats, ports.calls, ports.callbacks, ports.drafts).add_routes(r)
        self._sockets.add_routes(r)
        r.add_get("/healthz", self._healthz)
        if ports.metrics is not None and self._cfg.metrics.enabled:
            MetricsPage(self._cfg.metrics, self._web.trusted_proxies, ports.metrics).add_routes(r)
        r.add_static("/static", STATIC_DIR, append_version=False)
        return app

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        try:
            report = await self._ports.health.health()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("health_check_failed")
            return json_response({"status": "error", "error": type(exc).__name__}, 503)
        return json_response(
            {
                "status": "ok" if report.ok else "degraded",
                "checks": dict(report.checks),
                "websockets": len(self._sockets),
            },
            200 if report.ok else 503,
        )

    # ------------------------------------------------------------------ Edge (for page modules)

    @property
    def cfg(self) -> Config:
        return self._cfg

    @property
    def clock(self) -> Clock:
        return self._clock

    def site(self) -> str:
        return self._cfg.site.name

    def need(self, request: web.Request, *roles: str) -> RequestContext:
        ctx = context(request)
        if ctx is None:
            if is_api(request):
                raise HttpError(401, N_("not logged in"))
            raise web.HTTPSeeOther("/login")
        if roles and ctx.actor.role not in roles:
            raise HttpError(403, N_("not allowed for your role"))
        return ctx

    def seat_ids(self) -> Sequence[str]:
        return self._seats.seat_ids()

    async def read_json(self, request: web.Request) -> object:
        if request.content_type != "application/json":
            raise HttpError(400, "expected a JSON body (Content-Type: application/json)")
        try:
            return await request.json()
        except ValueError:
            raise HttpError(400, "the body is not valid JSON") from None
