"""The web edge's guards: the language of the request (`translator_of`), the error middleware
(feature errors → HTTP status, security headers, `log.exception` for a request that fails), the
session middleware and the CSRF/Origin check."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Mapping

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from yarl import URL

from ctid.accounts.sessions import Authenticator
from ctid.config import SiteConfig, WebConfig
from ctid.core.actor import Actor
from ctid.core.errors import (
    LinkExpiredError,
    RecordMissingError,
    RequestRefusedError,
    StateConflictError,
    TransitionError,
)
from ctid.i18n import N_
from ctid.web import pages
from ctid.web.edge import (
    CTX,
    WORDS,
    FieldErrors,
    HttpError,
    RequestContext,
    choose_translator,
    html_response,
    is_api,
    json_response,
    translator_of,
)
from ctid.web.link_pages import is_link_path
from ctid.web.ports import SeatDirectory

__all__ = ["Guards", "choose_translator", "context", "translator_of"]

log = structlog.get_logger(__name__)

SESSION_COOKIE = "ctid_session"
SECURE_SESSION_COOKIE = "__Host-ctid_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_POSTS = ("application/x-www-form-urlencoded", "multipart/form-data")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Origin = tuple[str, str, int | None]


def origin_key(url: URL) -> Origin:
    return (url.scheme.lower(), (url.host or "").lower(), url.port)


def context(request: web.Request) -> RequestContext | None:
    """The logged-in context the session middleware attached, if any."""
    return request.get(CTX)


class Guards:
    """The three middlewares, in order: errors, session, CSRF. `origin` is the public URL's
    origin, known once the server is bound (`bind_origin`)."""

    def __init__(
        self, web_cfg: WebConfig, site: SiteConfig, auth: Authenticator, seats: SeatDirectory
    ) -> None:
        self._web = web_cfg
        self._site_cfg = site
        self._site = site.name
        self._auth = auth
        self._seats = seats
        self.cookie = SECURE_SESSION_COOKIE if web_cfg.secure_cookies else SESSION_COOKIE
        self._origin: Origin | None = None

    def bind_origin(self, public_url: URL) -> None:
        self._origin = origin_key(public_url)

    def middlewares(self) -> list[Middleware]:
        return [self._language_mw, self._errors_mw, self._auth_mw, self._csrf_mw]

    # ------------------------------------------------------------------ language

    @web.middleware
    async def _language_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request[WORDS] = choose_translator(request, self._site_cfg)
        resp = await handler(request)
        if not resp.prepared:
            resp.headers.setdefault("Content-Language", request[WORDS].locale.replace("_", "-"))
            resp.headers.setdefault("Vary", "Accept-Language, Cookie")
        return resp

    # ------------------------------------------------------------------ errors

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

    def error(
        self,
        request: web.Request,
        status: int,
        message: str,
        fields: Mapping[str, str] | None = None,
    ) -> web.Response:
        # JSON for the API and for fetch() writes; an HTML page for browsing and for the
        # plain forms (incident actions, callbacks, roster) so a person reads what went wrong.
        form_post = request.content_type in FORM_POSTS
        t = translator_of(request)
        # Messages raised from a literal marked with N_() have words in the catalog; any other
        # (formatted with values) stays as written.
        message = t.gettext(message) if message else message
        if is_api(request) or (request.method not in SAFE_METHODS and not form_post):
            body: dict[str, object] = {"error": message}
            if fields:
                body["fields"] = dict(fields)
            return json_response(body, status)
        ctx = context(request)
        return html_response(
            pages.error_page(
                t=t,
                site=self._site,
                status=status,
                message=message,
                actor=ctx.actor if ctx else None,
                csrf=ctx.session.csrf_token if ctx else "",
            ),
            status,
        )

    @web.middleware
    async def _errors_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        resp: web.StreamResponse
        try:
            resp = await handler(request)
        except FieldErrors as exc:
            t = translator_of(request)
            words = {name: p.words(t) for name, p in exc.problems.items()}
            resp = self.error(request, exc.status, exc.message, words)
        except HttpError as exc:
            resp = self.error(request, exc.status, exc.message)
            resp.headers.update(exc.headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = self.error(request, exc.status, exc.reason)
        except LinkExpiredError as exc:
            resp = self.error(request, 410, str(exc))
        except RequestRefusedError as exc:
            resp = self.error(request, 400, str(exc))
        except RecordMissingError as exc:
            resp = self.error(request, 404, str(exc))
        except (StateConflictError, TransitionError) as exc:
            resp = self.error(request, 409, str(exc))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("web_request_failed", method=request.method, path=request.path)
            resp = self.error(request, 500, N_("internal error"))
        self._security_headers(resp)
        return resp

    # ------------------------------------------------------------------ session

    @web.middleware
    async def _auth_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(("/static/", "/healthz")):
            session = await self._auth.resolve(request.cookies.get(self.cookie))
            if session is not None:
                seat = self._seats.seat_of(session.employee_id)
                request[CTX] = RequestContext(
                    session, Actor(session.employee_id, session.name, session.role, seat)
                )
        return await handler(request)

    # ------------------------------------------------------------------ CSRF and Origin

    def origin_ok(self, request: web.Request) -> bool:
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
        return url.absolute and origin_key(url) == self._origin

    @web.middleware
    async def _csrf_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in SAFE_METHODS:
            return await handler(request)
        if not self.origin_ok(request):
            log.warning(
                "web_cross_origin_refused", path=request.path, origin=request.headers.get("Origin")
            )
            raise HttpError(403, N_("cross-origin request refused"))
        if request.path == "/login":
            return await handler(request)  # checked against the login-form token there
        if is_link_path(request.path):
            return await handler(request)  # no session: a double-submit cookie, checked there
        ctx = context(request)
        if ctx is None:
            raise HttpError(401, N_("not logged in"))
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.content_type in FORM_POSTS:
            form = await request.post()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(
            sent.encode("utf-8", "replace"), ctx.session.csrf_token.encode("ascii")
        ):
            log.warning("web_csrf_refused", path=request.path, employee_id=ctx.actor.employee_id)
            raise HttpError(403, N_("missing or wrong CSRF token"))
        return await handler(request)
