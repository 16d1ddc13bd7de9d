"""Signing in and out: `/` (where to go), the login form with its signed form token, login (the
session cookie) and logout (which also closes the login's push sockets)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from yarl import URL

from ctid.accounts.sessions import Authenticator, LoginFailedError, LoginThrottledError
from ctid.config import WebConfig
from ctid.i18n import N_, normalise
from ctid.web import pages
from ctid.web.auth import LoginFormTokens
from ctid.web.edge import LANG_COOKIE, Edge, HttpError, html_response, see_other
from ctid.web.middleware import CSRF_FIELD, context, translator_of
from ctid.web.proxy import client_ip

LOGIN_COOKIE = "ctid_login"
LANG_COOKIE_MAX_AGE = 400 * 24 * 3600
"""Browsers cap cookie lifetimes at 400 days; the choice lasts that long."""
ENTER_BOTH = N_("Enter your employee ID and password.")
LOGIN_REFUSALS = (
    N_("wrong employee ID or password"),
    N_("too many failed logins; try again later"),
)
"""The words of `ctid.accounts` refusals, marked here where they are shown."""


class LoginPages:
    """`start(secret)` before serving (the form token is keyed with the web secret).
    `on_logout(session_id)` closes what the login had open (its push sockets)."""

    def __init__(
        self,
        edge: Edge,
        web_cfg: WebConfig,
        auth: Authenticator,
        *,
        session_cookie: str,
        on_logout: Callable[[str], None],
    ) -> None:
        self._edge = edge
        self._web = web_cfg
        self._auth = auth
        self._cookie = session_cookie
        self._on_logout = on_logout
        self._tokens: LoginFormTokens | None = None

    def start(self, secret: bytes) -> None:
        self._tokens = LoginFormTokens(secret)

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/", self._index)
        r.add_get("/login", self._login_form)
        r.add_post("/login", self._login)
        r.add_post("/logout", self._logout)
        r.add_get("/lang", self._language)

    async def _language(self, request: web.Request) -> web.StreamResponse:
        """`GET /lang?to=en|zh_CN[&next=/desk]`, the nav's language switch: keep the choice in
        a cookie and go back to `next` or where the user was (the Referer, when it is one of
        our pages)."""
        chosen = normalise(request.query.get("to"))
        if chosen is None:
            raise HttpError(400, N_("unknown language"))
        back = request.query.get("next") or "/"
        referer = request.headers.get("Referer")
        if back == "/" and referer:
            url = URL(referer)
            if url.absolute and url.host == request.url.host and url.port == request.url.port:
                back = url.path_qs if url.path.startswith("/") else "/"
        if not back.startswith("/") or back.startswith("//") or back.startswith("/lang"):
            back = "/"
        resp = see_other(back)
        resp.set_cookie(
            LANG_COOKIE,
            chosen,
            max_age=LANG_COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self._web.secure_cookies or None,
        )
        return resp

    def _form(
        self,
        request: web.Request,
        *,
        message: str = "",
        employee_id: str = "",
        status: int = 200,
    ) -> web.Response:
        assert self._tokens is not None
        nonce, token = self._tokens.issue()
        t = translator_of(request)
        resp = html_response(
            pages.login_page(
                site=self._edge.site(),
                form_token=token,
                message=t.gettext(message) if message else "",
                employee_id=employee_id,
                t=t,
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

    async def _index(self, request: web.Request) -> web.StreamResponse:
        ctx = context(request)
        if ctx is None:
            return see_other("/login")
        return see_other("/ops/roster" if ctx.actor.role == "ops" else "/desk")

    async def _login_form(self, request: web.Request) -> web.StreamResponse:
        if context(request) is not None:
            return see_other("/desk")
        return self._form(request)

    async def _login(self, request: web.Request) -> web.StreamResponse:
        assert self._tokens is not None
        form = await request.post()
        token = form.get(CSRF_FIELD)
        if not self._tokens.check(
            request.cookies.get(LOGIN_COOKIE), token if isinstance(token, str) else None
        ):
            raise HttpError(403, N_("the sign-in form expired; reload the page"))
        employee_id = form.get("employee_id")
        password = form.get("password")
        if not isinstance(employee_id, str) or not isinstance(password, str):
            raise HttpError(400, "employee_id and password are required")
        employee_id = employee_id.strip()[:64]
        if not employee_id or not password or len(password) > 1024:
            return self._form(request, message=ENTER_BOTH, employee_id=employee_id, status=400)
        ip = client_ip(request, self._web.trusted_proxies)
        try:
            session_token, _ = await self._auth.login(employee_id, password, ip)
        except LoginThrottledError as exc:
            resp = self._form(request, message=str(exc), employee_id=employee_id, status=429)
            resp.headers["Retry-After"] = str(max(1, int(exc.retry_after_s + 0.999)))
            return resp
        except LoginFailedError as exc:
            return self._form(request, message=str(exc), employee_id=employee_id, status=401)
        resp = see_other("/desk")
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
        ctx = self._edge.need(request)
        await self._auth.logout(ctx.session, client_ip(request, self._web.trusted_proxies))
        self._on_logout(ctx.session.session_id)
        resp = see_other("/login")
        resp.del_cookie(self._cookie, path="/")
        return resp
