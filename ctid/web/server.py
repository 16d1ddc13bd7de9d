"""`WebServer`: the aiohttp app (routes, auth/CSRF/Origin middlewares, security headers, errors),
the desk, wallboard and listen-in endpoints, the WebSockets fed from the pop hub, and its lifecycle
(bind in `__aenter__`, `run()` purges expired sessions, sockets closed on shutdown)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import structlog
from aiohttp import WSMsgType, web
from yarl import URL

from ctid.accounts.sessions import Authenticator, LoginFailedError, LoginThrottledError
from ctid.calls.spy import SPY_MODES, SpyMode
from ctid.calls.spy_control import (
    SpyStarted,
)
from ctid.config import Config, WebConfig
from ctid.core.actor import (
    Actor,
)
from ctid.core.clock import Clock
from ctid.core.errors import (
    CtidError,
    LinkExpiredError,
    RecordMissingError,
    RequestRefusedError,
    StateConflictError,
    TransitionError,
)
from ctid.tickets.errors import (
    TokenError,
)
from ctid.tickets.forms import (
    IncidentDraft,
)
from ctid.tickets.lifecycle import (
    CATEGORIES,
    LEVELS,
    REQUEST_TYPES,
)
from ctid.web import pages
from ctid.web.auth import LoginFormTokens
from ctid.web.edge import CTX as _CTX
from ctid.web.edge import HttpError, RequestContext
from ctid.web.edge import choice as _choice
from ctid.web.edge import html_response as _html
from ctid.web.edge import is_api as _is_api
from ctid.web.edge import json_response as _json
from ctid.web.edge import see_other as _see_other
from ctid.web.edge import str_field as _str_field
from ctid.web.incidents import IncidentPages
from ctid.web.links import LinkPages, is_link_path
from ctid.web.ports import (
    CallbackPort,
    CallControlPort,
    CallerPort,
    ConfigSeats,
    HealthPort,
    IncidentPort,
    IncidentWorkflowPort,
    LinkPort,
    PushSource,
    PushSubscription,
    ReportsPort,
    RosterPort,
    SeatDirectory,
    SpyPort,
)
from ctid.web.reporting import ReportPages
from ctid.web.roster import RosterPages

log = structlog.get_logger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "ctid_session"
SECURE_SESSION_COOKIE = "__Host-ctid_session"
LOGIN_COOKIE = "ctid_login"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CLOSE_SESSION_ENDED = 4001
"""WebSocket close code: the login ended (expired or logged out) — the desktop goes to /login."""
CLOSE_TOO_SLOW = 4008
"""WebSocket close code: the desktop fell behind and was dropped — it reconnects."""

_INCIDENT_NUMBER = re.compile(r"^[A-Za-z0-9\-]{1,64}$")
_SPY_SESSION = re.compile(r"^[A-Za-z0-9_.:@;/\-]{1,128}$")
WALLBOARD_ROLES = ("supervisor", "ops")


@dataclass(frozen=True, slots=True)
class WebPorts:
    """What the web needs from the other features (the composition root builds the adapters)."""

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
    """A port left None turns its pages into a 404 "not available"."""


@dataclass(eq=False)
class _Socket:
    ws: web.WebSocketResponse
    session_id: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    code: int = 1001
    reason: str = "server shutting down"
    finished: asyncio.Event = field(default_factory=asyncio.Event)


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


def _origin_key(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme.lower(), (url.host or "").lower(), url.port)


def parse_incident(data: object) -> IncidentDraft:
    """The incident form's JSON, checked for shape (a 400 names the first bad field)."""
    if not isinstance(data, dict):
        raise HttpError(400, "expected a JSON object")
    caller_id = data.get("caller_id")
    if caller_id in ("", None):
        caller_id = None
    elif isinstance(caller_id, str) and caller_id.isdigit():
        caller_id = int(caller_id)
    elif not isinstance(caller_id, int) or isinstance(caller_id, bool):
        raise HttpError(400, "caller_id must be a number or null")
    number = _str_field(data, "number", 64) or None
    if number is not None and not _INCIDENT_NUMBER.match(number):
        raise HttpError(400, "number is not an incident number")
    return IncidentDraft(
        number=number,
        call_id=_str_field(data, "call_id", 64) or None,
        caller_id=caller_id,
        caller_name=_str_field(data, "caller_name", 128, required=True),
        phone=_str_field(data, "phone", 64),
        department=_str_field(data, "department", 128),
        office=_str_field(data, "office", 128),
        request_type=_choice(data, "request_type", REQUEST_TYPES),
        category=_choice(data, "category", CATEGORIES),
        impact=_choice(data, "impact", LEVELS),
        urgency=_choice(data, "urgency", LEVELS),
        summary=_str_field(data, "summary", 200, required=True),
        description=_str_field(data, "description", 4000),
    )


class WebServer:
    """The web edge as an async context manager: binds in `__aenter__` (port 0 picks a free
    port; `port` tells which), `run()` until cancelled, closes every WebSocket on exit.

    A `web.public_url` whose port is 0 means "the port we bound" (tests bind port 0)."""

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
        self._hub = ports.hub
        self._seats: SeatDirectory = ports.seats or ConfigSeats(config.seats)
        self._clock = clock
        self._secret = secret
        self._send_timeout = ws_send_timeout_s
        self._heartbeat = ws_heartbeat_s
        self._purge_every = purge_every_s
        self.auth = auth
        self._login_tokens: LoginFormTokens | None = None
        self._sockets: set[_Socket] = set()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._origin: tuple[str, str, int | None] | None = None
        self._public = URL(self._web.public_url)
        self._cookie = SECURE_SESSION_COOKIE if self._web.secure_cookies else SESSION_COOKIE
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
        self._login_tokens = LoginFormTokens(self._secret)
        self._links.start(self._secret)
        await self.auth.prepare()
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
        self._origin = _origin_key(self._public)
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
        conns = list(self._sockets)
        for conn in conns:
            self._stop(conn, 1001, "server shutting down")
        if conns:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    for conn in conns:
                        await conn.finished.wait()

    def _stop(self, conn: _Socket, code: int, reason: str) -> None:
        if not conn.stop.is_set():
            conn.code, conn.reason = code, reason
            conn.stop.set()

    # ------------------------------------------------------------------ app

    def _build_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._errors_mw, self._auth_mw, self._csrf_mw],
            client_max_size=64 * 1024,
        )
        r = app.router
        r.add_get("/", self._index)
        r.add_get("/login", self._login_form)
        r.add_post("/login", self._login)
        r.add_post("/logout", self._logout)
        r.add_get("/desk", self._desk)
        r.add_get("/callers", self._callers_page)
        r.add_get("/supervisor", self._supervisor_page)
        r.add_get("/api/me", self._me)
        r.add_get("/api/callers", self._callers_api)
        r.add_post("/api/incidents", self._save_incident)
        r.add_post("/api/spy", self._spy)
        r.add_post("/api/spy/{session}/stop", self._spy_stop)
        r.add_post("/api/spy/{session}/mode", self._spy_mode)
        ports = self._ports
        IncidentPages(self, ports.workflow, ports.calls, ports.callbacks).add_routes(r)
        self._links.add_routes(r)
        RosterPages(self, ports.roster).add_routes(r)
        ReportPages(self, ports.reports).add_routes(r)
        r.add_get("/ws/seat", self._ws_seat)
        r.add_get("/ws/supervisor", self._ws_supervisor)
        r.add_get("/healthz", self._healthz)
        r.add_static("/static", STATIC_DIR, append_version=False)
        return app

    def _site(self) -> str:
        return self._cfg.site.name

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
        return self._need(request, *roles)

    def seat_ids(self) -> Sequence[str]:
        return self._seats.seat_ids()

    async def read_json(self, request: web.Request) -> object:
        return await self._read_json(request)

    def _security_headers(self, resp: web.StreamResponse) -> None:
        if resp.prepared:
            return
        h = resp.headers
        h.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        )
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if self._web.secure_cookies:
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        if resp.content_type in ("text/html", "application/json"):
            h.setdefault("Cache-Control", "no-store")

    def _error(self, request: web.Request, status: int, message: str) -> web.Response:
        # JSON for the API and for fetch() writes; an HTML page for browsing and for the
        # plain forms (incident actions, callbacks, roster) so a person reads what went wrong.
        form_post = request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        )
        if _is_api(request) or (request.method not in SAFE_METHODS and not form_post):
            return _json({"error": message}, status)
        ctx = self._ctx(request)
        return _html(
            pages.error_page(
                site=self._site(),
                status=status,
                message=message,
                actor=ctx.actor if ctx else None,
                csrf=ctx.session.csrf_token if ctx else "",
            ),
            status,
        )

    @web.middleware
    async def _errors_mw(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        resp: web.StreamResponse
        try:
            resp = await handler(request)
        except HttpError as exc:
            resp = self._error(request, exc.status, exc.message)
            resp.headers.update(exc.headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = self._error(request, exc.status, exc.reason)
        except RequestRefusedError as exc:
            resp = self._error(request, 400, str(exc))
        except RecordMissingError as exc:
            resp = self._error(request, 404, str(exc))
        except (StateConflictError, TransitionError) as exc:
            resp = self._error(request, 409, str(exc))
        except LinkExpiredError as exc:
            resp = self._error(request, 410, str(exc))
        except TokenError as exc:
            resp = self._error(request, 400, str(exc))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("web_request_failed", method=request.method, path=request.path)
            resp = self._error(request, 500, "internal error")
        self._security_headers(resp)
        return resp

    @web.middleware
    async def _auth_mw(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(("/static/", "/healthz")):
            session = await self.auth.resolve(request.cookies.get(self._cookie))
            if session is not None:
                seat = self._seats.seat_of(session.employee_id)
                request[_CTX] = RequestContext(
                    session, Actor(session.employee_id, session.name, session.role, seat)
                )
        return await handler(request)

    def _origin_ok(self, request: web.Request) -> bool:
        """The request comes from a page of ours: `Origin` (or, failing that, `Referer`) names
        the public URL's origin. Browsers send Origin on every POST and WebSocket handshake."""
        origin = request.headers.get("Origin")
        source = origin if origin is not None else request.headers.get("Referer")
        if not source or source == "null":
            return False
        try:
            url = URL(source)
        except ValueError:
            return False
        return url.absolute and _origin_key(url) == self._origin

    @web.middleware
    async def _csrf_mw(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method in SAFE_METHODS:
            return await handler(request)
        if not self._origin_ok(request):
            log.warning(
                "web_cross_origin_refused", path=request.path, origin=request.headers.get("Origin")
            )
            raise HttpError(403, "cross-origin request refused")
        if request.path == "/login":
            return await handler(request)  # checked against the login-form token there
        if is_link_path(request.path):
            return await handler(request)  # no session: a double-submit cookie, checked there
        ctx = self._ctx(request)
        if ctx is None:
            raise HttpError(401, "not logged in")
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            form = await request.post()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(
            sent.encode("utf-8", "replace"), ctx.session.csrf_token.encode("ascii")
        ):
            log.warning("web_csrf_refused", path=request.path, employee_id=ctx.actor.employee_id)
            raise HttpError(403, "missing or wrong CSRF token")
        return await handler(request)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _ctx(request: web.Request) -> RequestContext | None:
        return request.get(_CTX)

    def _need(self, request: web.Request, *roles: str) -> RequestContext:
        ctx = self._ctx(request)
        if ctx is None:
            if _is_api(request):
                raise HttpError(401, "not logged in")
            raise web.HTTPSeeOther("/login")
        if roles and ctx.actor.role not in roles:
            raise HttpError(403, "not allowed for your role")
        return ctx

    def _seat_for(self, ctx: RequestContext, requested: str | None) -> str | None:
        """Which seat's stream `ctx` may see: agents and ops only their own; supervisors any."""
        actor = ctx.actor
        if requested:
            if requested not in self._seats.seat_ids():
                raise HttpError(404, "no such seat")
            if actor.role == "supervisor" or requested == actor.seat_id:
                return requested
            raise HttpError(403, "that is not your seat")
        return actor.seat_id

    def _login_response(
        self, *, message: str = "", employee_id: str = "", status: int = 200
    ) -> web.Response:
        assert self._login_tokens is not None
        nonce, token = self._login_tokens.issue()
        resp = _html(
            pages.login_page(
                site=self._site(), form_token=token, message=message, employee_id=employee_id
            ),
            status,
        )
        resp.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=3600,
            path="/login",
            httponly=True,
            samesite="Strict",
            secure=self._web.secure_cookies or None,
        )
        return resp

    # ------------------------------------------------------------------ pages

    async def _index(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ctx(request)
        if ctx is None:
            return _see_other("/login")
        return _see_other("/ops/roster" if ctx.actor.role == "ops" else "/desk")

    async def _login_form(self, request: web.Request) -> web.StreamResponse:
        if self._ctx(request) is not None:
            return _see_other("/desk")
        return self._login_response()

    async def _login(self, request: web.Request) -> web.StreamResponse:
        assert self._login_tokens is not None
        form = await request.post()
        token = form.get(CSRF_FIELD)
        if not self._login_tokens.check(
            request.cookies.get(LOGIN_COOKIE), token if isinstance(token, str) else None
        ):
            raise HttpError(403, "the sign-in form expired; reload the page")
        employee_id = form.get("employee_id")
        password = form.get("password")
        if not isinstance(employee_id, str) or not isinstance(password, str):
            raise HttpError(400, "employee_id and password are required")
        employee_id = employee_id.strip()[:64]
        if not employee_id or not password or len(password) > 1024:
            return self._login_response(
                message="Enter your employee ID and password.", employee_id=employee_id, status=400
            )
        ip = request.remote or "-"
        try:
            session_token, _ = await self.auth.login(employee_id, password, ip)
        except LoginThrottledError as exc:
            resp = self._login_response(message=str(exc), employee_id=employee_id, status=429)
            resp.headers["Retry-After"] = str(max(1, int(exc.retry_after_s + 0.999)))
            return resp
        except LoginFailedError as exc:
            return self._login_response(message=str(exc), employee_id=employee_id, status=401)
        resp = _see_other("/desk")
        resp.set_cookie(
            self._cookie,
            session_token,
            max_age=self._web.session_ttl_s,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self._web.secure_cookies or None,
        )
        resp.del_cookie(LOGIN_COOKIE, path="/login")
        return resp

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        ctx = self._need(request)
        await self.auth.logout(ctx.session, request.remote or "-")
        for conn in list(self._sockets):
            if conn.session_id == ctx.session.session_id:
                self._stop(conn, CLOSE_SESSION_ENDED, "logged out")
        resp = _see_other("/login")
        resp.del_cookie(self._cookie, path="/")
        return resp

    async def _desk(self, request: web.Request) -> web.StreamResponse:
        ctx = self._need(request)
        seat = self._seat_for(ctx, request.query.get("seat"))
        return _html(
            pages.desk_page(
                site=self._site(),
                actor=ctx.actor,
                csrf=ctx.session.csrf_token,
                seat_id=seat,
                seat_ids=self._seats.seat_ids(),
            )
        )

    def _query(self, request: web.Request) -> str:
        q = request.query.get("q", "").strip()
        if len(q) > 64:
            raise HttpError(400, "q is longer than 64 characters")
        return q

    async def _callers_page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._need(request)
        q = self._query(request)
        rows = await self._ports.callers.search(q, 50) if q else None
        return _html(
            pages.callers_page(
                site=self._site(), actor=ctx.actor, csrf=ctx.session.csrf_token, query=q, rows=rows
            )
        )

    async def _supervisor_page(self, request: web.Request) -> web.StreamResponse:
        ctx = self._need(request, *WALLBOARD_ROLES)
        by_id = {s.id: s for s in self._cfg.seats}
        seats = [
            (sid, by_id[sid].name if sid in by_id else sid, by_id[sid].tier if sid in by_id else "")
            for sid in self._seats.seat_ids()
        ]
        return _html(
            pages.supervisor_page(
                site=self._site(),
                actor=ctx.actor,
                csrf=ctx.session.csrf_token,
                seats=seats,
                ring_cadence_s=self._cfg.ring.ring_cadence_s,
                max_rings=self._cfg.ring.max_rings,
                talk_cap_s=self._cfg.talk_cap.talk_cap_s,
                can_spy=ctx.actor.role == "supervisor" and self._ports.spy is not None,
                timezone=self._cfg.site.timezone,
            )
        )

    # ------------------------------------------------------------------ JSON API

    async def _me(self, request: web.Request) -> web.StreamResponse:
        ctx = self._need(request)
        a = ctx.actor
        return _json(
            {
                "employee_id": a.employee_id,
                "name": a.name,
                "role": a.role,
                "seat": a.seat_id,
                "expires_at": ctx.session.expires_at.timestamp(),
            }
        )

    async def _callers_api(self, request: web.Request) -> web.StreamResponse:
        self._need(request)
        q = self._query(request)
        if not q:
            raise HttpError(400, "q is required")
        rows = await self._ports.callers.search(q, 20)
        return _json(
            {
                "callers": [
                    {
                        "caller_id": r.caller_id,
                        "name": r.name,
                        "phones": list(r.phones),
                        "employee_id": r.employee_id,
                        "department": r.department,
                        "office": r.office,
                        "vip": r.vip,
                        "open_incidents": r.open_incidents,
                    }
                    for r in rows
                ]
            }
        )

    async def _read_json(self, request: web.Request) -> object:
        if request.content_type != "application/json":
            raise HttpError(400, "expected a JSON body (Content-Type: application/json)")
        try:
            return await request.json()
        except ValueError:
            raise HttpError(400, "the body is not valid JSON") from None

    async def _save_incident(self, request: web.Request) -> web.StreamResponse:
        ctx = self._need(request, "agent", "supervisor")
        draft = parse_incident(await self._read_json(request))
        saved = await self._ports.incidents.save(draft, ctx.actor)
        log.info(
            "incident_saved_from_desk",
            number=saved.number,
            employee_id=ctx.actor.employee_id,
            call_id=draft.call_id,
        )
        if draft.call_id and ctx.actor.seat_id:
            self._hub.finish_wrapup(ctx.actor.seat_id, draft.call_id, saved.number)
        return _json({"number": saved.number, "status": saved.status}, 201)

    def _spy_port(self) -> SpyPort:
        if self._ports.spy is None:
            raise HttpError(404, "listening in is not available")
        return self._ports.spy

    @staticmethod
    def _spy_mode_of(data: Mapping[str, Any]) -> SpyMode:
        mode = data.get("mode", "listen")
        for known in SPY_MODES:
            if mode == known:
                return known
        raise HttpError(400, "mode must be listen, whisper or barge")

    @staticmethod
    def _spy_json(started: SpyStarted) -> dict[str, str]:
        return {
            "seat": started.seat_id,
            "mode": started.mode,
            "detail": started.detail,
            "session_id": started.session_id,
        }

    @staticmethod
    def _spy_session(request: web.Request) -> str:
        session = request.match_info["session"]
        if not _SPY_SESSION.match(session):
            raise HttpError(404, "no such listen-in")
        return session

    async def _spy(self, request: web.Request) -> web.StreamResponse:
        ctx = self._need(request, "supervisor")
        data = await self._read_json(request)
        if not isinstance(data, dict):
            raise HttpError(400, "expected a JSON object")
        seat = data.get("seat")
        if not isinstance(seat, str) or seat not in self._seats.seat_ids():
            raise HttpError(404, "no such seat")
        mode = self._spy_mode_of(data)
        started = await self._spy_port().spy(ctx.actor, seat, mode)
        log.info("spy_started", seat=seat, mode=mode, employee_id=ctx.actor.employee_id)
        return _json(self._spy_json(started), 201)

    async def _spy_stop(self, request: web.Request) -> web.StreamResponse:
        ctx = self._need(request, "supervisor")
        session = self._spy_session(request)
        await self._spy_port().stop(ctx.actor, session)
        log.info("spy_stopped", session_id=session, employee_id=ctx.actor.employee_id)
        return _json({"session_id": session, "stopped": True})

    async def _spy_mode(self, request: web.Request) -> web.StreamResponse:
        ctx = self._need(request, "supervisor")
        session = self._spy_session(request)
        data = await self._read_json(request)
        if not isinstance(data, dict) or "mode" not in data:
            raise HttpError(400, "mode is required")
        mode = self._spy_mode_of(data)
        switched = await self._spy_port().switch(ctx.actor, session, mode)
        log.info("spy_switched", session_id=session, mode=mode, employee_id=ctx.actor.employee_id)
        return _json(self._spy_json(switched))

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        try:
            report = await self._ports.health.health()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("health_check_failed")
            return _json({"status": "error", "error": type(exc).__name__}, 503)
        return _json(
            {
                "status": "ok" if report.ok else "degraded",
                "checks": dict(report.checks),
                "websockets": len(self._sockets),
            },
            200 if report.ok else 503,
        )

    # ------------------------------------------------------------------ WebSockets

    def _ws_auth(self, request: web.Request) -> RequestContext:
        # A WebSocket handshake is a GET, so the CSRF middleware does not see it; cross-site
        # WebSocket hijacking is stopped here: our Origin and a session, or 403.
        if not self._origin_ok(request) or "Origin" not in request.headers:
            raise HttpError(403, "cross-origin WebSocket refused")
        ctx = self._ctx(request)
        if ctx is None:
            raise HttpError(403, "not logged in")
        return ctx

    async def _ws_seat(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ws_auth(request)
        seat = self._seat_for(ctx, request.query.get("seat"))
        if seat is None:
            raise HttpError(403, "you are not assigned to a seat")
        return await self._serve_socket(
            request, ctx, lambda: self._hub.subscribe(seat), {"seat": seat}
        )

    async def _ws_supervisor(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ws_auth(request)
        if ctx.actor.role not in WALLBOARD_ROLES:
            raise HttpError(403, "not allowed for your role")
        return await self._serve_socket(
            request, ctx, self._hub.subscribe_supervisor, {"channel": "supervisor"}
        )

    async def _serve_socket(
        self,
        request: web.Request,
        ctx: RequestContext,
        subscribe: Callable[[], PushSubscription],
        hello: dict[str, object],
    ) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=self._heartbeat, max_msg_size=4096, timeout=3.0)
        await ws.prepare(request)
        conn = _Socket(ws, ctx.session.session_id)
        self._sockets.add(conn)
        sub = subscribe()
        tasks: list[asyncio.Task[Any]] = []
        code, reason = 1000, ""
        try:
            now = self._clock.utcnow()
            await ws.send_str(
                json.dumps(
                    {
                        "type": "hello",
                        **hello,
                        "server_now": now.timestamp(),
                        "session_expires_at": ctx.session.expires_at.timestamp(),
                    }
                )
            )
            reader = asyncio.create_task(self._ws_read(ws))
            sender = asyncio.create_task(self._ws_forward(ws, sub))
            stopper = asyncio.create_task(conn.stop.wait())
            tasks = [reader, sender, stopper]
            remaining = (ctx.session.expires_at - now).total_seconds()
            done, _ = await asyncio.wait(
                tasks, timeout=max(0.0, remaining), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                code, reason = CLOSE_SESSION_ENDED, "session expired"
            elif stopper in done:
                code, reason = conn.code, conn.reason
            elif sender in done:
                if sub.dropped or sender.exception() is not None:
                    code, reason = CLOSE_TOO_SLOW, "too slow, reconnect"
                    log.warning("web_socket_too_slow", employee_id=ctx.actor.employee_id)
                else:
                    code, reason = 1001, "stream closed"
        except (ConnectionResetError, OSError) as exc:
            log.info("web_socket_lost", employee_id=ctx.actor.employee_id, error=repr(exc))
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            sub.close()
            self._sockets.discard(conn)
            try:
                if code == CLOSE_TOO_SLOW and request.transport is not None:
                    # Its socket buffer is full: a close frame would only queue behind the
                    # backlog, so drop the connection; the desktop reconnects and gets the
                    # snapshot.
                    request.transport.abort()
                await self._close_ws(ws, code, reason)
            finally:
                conn.finished.set()
        return ws

    async def _ws_read(self, ws: web.WebSocketResponse) -> None:
        # The desktop sends nothing we act on; reading keeps pings/pongs and the close
        # handshake flowing and tells us when the browser goes away.
        async for msg in ws:
            if msg.type is WSMsgType.ERROR:
                return

    async def _ws_forward(self, ws: web.WebSocketResponse, sub: PushSubscription) -> None:
        while True:
            data = await sub.get()
            if data is None:
                return
            # A browser that stops reading fills the socket buffer and send blocks: bounded.
            async with asyncio.timeout(self._send_timeout):
                await ws.send_str(data)

    async def _close_ws(self, ws: web.WebSocketResponse, code: int, reason: str) -> None:
        if ws.closed:
            return
        # wait_for cancels a close stuck on an unread socket; aiohttp then drops the link.
        with contextlib.suppress(TimeoutError, ConnectionError, OSError):
            await asyncio.wait_for(ws.close(code=code, message=reason.encode()), 5.0)
