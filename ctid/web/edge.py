"""What every page module of the web edge shares: the request context, `HttpError`, response
helpers, form/JSON field checks, time formatting, and `Edge` — the slice of `WebServer` a page
module may use (so the feature modules never import the server)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Protocol

from aiohttp import web

from ctid.accounts.sessions import SessionInfo
from ctid.config import Config, SiteConfig
from ctid.core.actor import (
    Actor,
)
from ctid.core.clock import Clock
from ctid.core.errors import CtidError
from ctid.i18n import N_, Translator, negotiate, translator
from ctid.web.html import Markup
from ctid.web.ports import SeatDirectory

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class HttpError(CtidError):
    """Ends a request with `status` and a message (JSON `{"error": ...}` for the API)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """What is wrong with one field, in words: an English msgid and its values."""

    message: str
    values: Mapping[str, object] = field(default_factory=dict)

    def words(self, t: Translator) -> str:
        return t.gettext(self.message, **self.values)


class FieldErrors(HttpError):
    """Every field a form got wrong, at once (field name → problem); a 400. Pages show each
    next to its field; the API answers `{"error", "fields": {name: words}}`."""

    def __init__(self, problems: Mapping[str, FieldProblem]):
        super().__init__(400, N_("Some fields need attention."))
        self.problems = dict(problems)


@dataclass(frozen=True, slots=True)
class RequestContext:
    session: SessionInfo
    actor: Actor


CTX = web.RequestKey("ctid_ctx", RequestContext)
WORDS = web.RequestKey("ctid_t", Translator)
"""The request's Translator (set first of all by the language middleware; read it with
`ctid.web.middleware.translator_of`)."""
LANG_COOKIE = "ctid_lang"
"""The user's own language choice (`zh_CN` | `en`), set by the switch in the nav."""


def choose_translator(request: web.Request, site: SiteConfig) -> Translator:
    """The user's own choice (the `ctid_lang` cookie), else the browser's `Accept-Language`,
    else the site default; dates in the site's zone."""
    locale = negotiate(
        choice=request.cookies.get(LANG_COOKIE),
        accept_language=request.headers.get("Accept-Language"),
        default=site.language,
    )
    return translator(locale, site.timezone)


def translator_of(request: web.Request) -> Translator:
    """The words and formats of this request (the language middleware chose them first)."""
    t = request.get(WORDS)
    if t is None:  # a request the middleware never saw (e.g. a handler tested alone)
        t = choose_translator(request, SiteConfig())
        request[WORDS] = t
    return t


class Edge(Protocol):
    """What a page module needs from the server."""

    @property
    def cfg(self) -> Config: ...

    @property
    def clock(self) -> Clock: ...

    def site(self) -> str: ...

    def need(self, request: web.Request, *roles: str) -> RequestContext:
        """The logged-in context; a redirect to /login (pages) or 401 (API) when anonymous, 403
        when the role is not one of `roles` (any role when none are given)."""
        ...

    def seat_ids(self) -> Sequence[str]: ...

    async def read_json(self, request: web.Request) -> object: ...


def seat_for(seats: SeatDirectory, ctx: RequestContext, requested: str | None) -> str | None:
    """Which seat's stream `ctx` may see: agents and ops only their own; supervisors any."""
    actor = ctx.actor
    if requested:
        if requested not in seats.seat_ids():
            raise HttpError(404, "no such seat")
        if actor.role == "supervisor" or requested == actor.seat_id:
            return requested
        raise HttpError(403, "that is not your seat")
    return actor.seat_id


def label(value: str | None) -> str:
    """A vocabulary word as people read it: `after_hours` → `after hours`."""
    return (value or "").replace("_", " ")


def is_api(request: web.Request) -> bool:
    return request.path.startswith(("/api/", "/ws/", "/healthz"))


def json_response(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


def html_response(body: Markup, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def str_field(data: Mapping[str, Any], name: str, limit: int, *, required: bool = False) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise HttpError(400, f"{name} must be a string")
    value = value.strip()
    if len(value) > limit:
        raise HttpError(400, f"{name} is longer than {limit} characters")
    if required and not value:
        raise HttpError(400, f"{name} is required")
    return value


def choice(data: Mapping[str, Any], name: str, allowed: Sequence[str]) -> str:
    value = data.get(name)
    if value not in allowed:
        raise HttpError(400, f"{name} must be one of {', '.join(allowed)}")
    return str(value)


async def form_fields(request: web.Request) -> dict[str, str]:
    """A form POST's text fields (first value of each; uploaded files are left out)."""
    if request.content_type not in FORM_TYPES:
        raise HttpError(400, "expected a form post")
    form = await request.post()
    out: dict[str, str] = {}
    for key, value in form.items():
        if isinstance(value, str) and key not in out:
            out[key] = value
    return out


def int_field(data: Mapping[str, Any], name: str, *, minimum: int = 0, maximum: int = 2**31) -> int:
    value = data.get(name)
    if isinstance(value, bool):
        raise HttpError(400, f"{name} must be a whole number")
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 10:
        value = int(value.strip())
    if not isinstance(value, int) or not minimum <= value <= maximum:
        raise HttpError(400, f"{name} must be a whole number from {minimum} to {maximum}")
    return value


def when(dt: datetime | None, tz: tzinfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) instant in the site zone; empty for None."""
    if dt is None:
        return ""
    return dt.astimezone(tz).strftime(fmt)
