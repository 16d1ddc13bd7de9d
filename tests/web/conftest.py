"""Web fixtures: a migrated SQLite database, four users, hand-written recording fakes for the
ports, a `WebServer` on a loopback port, and `Browser`-like HTTP clients that log in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ctid.config import Config, SeatConfig, SiteConfig, WebConfig
from ctid.core.clock import FakeClock
from ctid.db import create_engine, session_factory, upgrade
from ctid.screenpop.hub import PopHub
from ctid.web.ports import (
    Actor,
    CallerRow,
    ConflictError,
    HealthReport,
    IncidentDraft,
    SavedIncident,
    SpyMode,
    SpyStarted,
)
from ctid.web.server import WebPorts, WebServer
from ctid.web.users import add_user, make_hasher

PASSWORD = "correct horse battery"
START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, a Monday

USERS = {
    "E1001": ("Li Wei", "agent"),  # staffs seat1
    "E1002": ("Zhang Min", "agent"),  # staffs seat2
    "E1003": ("Wang Fang", "agent"),  # on no seat
    "S9001": ("Chen Jing", "supervisor"),
    "O7001": ("Zhao Lei", "ops"),
}


def make_config(tmp_path: Path, **web: Any) -> Config:
    return Config(
        site=SiteConfig(name="IT Service Desk", data_dir=tmp_path),
        web=WebConfig(
            listen_host="127.0.0.1",
            listen_port=0,
            public_url="http://127.0.0.1:0",
            session_ttl_s=3600,
            **web,
        ),
        seats=(
            SeatConfig(
                id="seat1", name="Seat 1", tier="ordinary", interface="PJSIP/s1", staffed_by="E1001"
            ),
            SeatConfig(
                id="seat2", name="Seat 2", tier="ordinary", interface="PJSIP/s2", staffed_by="E1002"
            ),
            SeatConfig(id="seat3", name="Seat 3", tier="expert", interface="PJSIP/s3"),
            SeatConfig(id="seat4", name="Seat 4", tier="expert", interface="PJSIP/s4"),
        ),
    )


# ------------------------------------------------------------------------------ port fakes


@dataclass
class RecordingIncidents:
    """IncidentPort fake: records every save; `fail` makes the next save raise."""

    saved: list[tuple[IncidentDraft, Actor]] = field(default_factory=list)
    fail: Exception | None = None

    async def save(self, draft: IncidentDraft, actor: Actor) -> SavedIncident:
        if self.fail is not None:
            exc, self.fail = self.fail, None
            raise exc
        self.saved.append((draft, actor))
        return SavedIncident(draft.number or f"INC-20261123-{len(self.saved):04d}", "recorded")


@dataclass
class FakeCallers:
    rows: list[CallerRow] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    async def search(self, query: str, limit: int) -> Sequence[CallerRow]:
        self.queries.append(query)
        q = query.casefold()
        return [
            r
            for r in self.rows
            if q in r.name.casefold()
            or q in r.employee_id.casefold()
            or any(q in p for p in r.phones)
        ][:limit]


@dataclass
class FakeHealth:
    report: HealthReport = field(
        default_factory=lambda: HealthReport(True, {"ami": "up", "database": "ok"})
    )

    async def health(self) -> HealthReport:
        return self.report


@dataclass
class RecordingSpy:
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    busy: bool = False

    async def spy(self, supervisor: Actor, seat_id: str, mode: SpyMode) -> SpyStarted:
        if self.busy:
            raise ConflictError(f"{seat_id} is not on a call")
        self.calls.append((supervisor.employee_id, seat_id, mode))
        return SpyStarted(seat_id, mode, "PJSIP/sup1")


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def hasher() -> PasswordHasher:
    # Cheap parameters: the tests exercise the flow, not Argon2's cost.
    return make_hasher(time_cost=1, memory_cost_kib=8, parallelism=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}")
    await upgrade(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
async def sessions(
    engine: AsyncEngine, hasher: PasswordHasher, clock: FakeClock
) -> async_sessionmaker[AsyncSession]:
    factory = session_factory(engine)
    for emp, (name, role) in USERS.items():
        await add_user(factory, emp, name, role, PASSWORD, clock=clock, hasher=hasher)
    return factory


@dataclass
class Env:
    server: WebServer
    hub: PopHub
    clock: FakeClock
    incidents: RecordingIncidents
    callers: FakeCallers
    health: FakeHealth
    spy: RecordingSpy
    sessions: async_sessionmaker[AsyncSession]

    @property
    def base(self) -> str:
        return str(self.server.public_url).rstrip("/")

    @property
    def origin(self) -> str:
        return self.base


@pytest.fixture
def hub() -> PopHub:
    return PopHub()


@pytest.fixture
def make_env(
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    hasher: PasswordHasher,
    hub: PopHub,
) -> Callable[..., Any]:
    """`async with make_env(**web_config) as env:` — a running WebServer with fresh fakes."""

    def _make(**web: Any) -> _EnvContext:
        return _EnvContext(
            make_config(tmp_path, **web), sessions=sessions, clock=clock, hasher=hasher, hub=hub
        )

    return _make


class _EnvContext:
    def __init__(
        self,
        config: Config,
        *,
        sessions: async_sessionmaker[AsyncSession],
        clock: FakeClock,
        hasher: PasswordHasher,
        hub: PopHub,
    ) -> None:
        self.incidents = RecordingIncidents()
        self.callers = FakeCallers()
        self.health = FakeHealth()
        self.spy = RecordingSpy()
        self.hub = hub
        self.sessions = sessions
        self.clock = clock
        self.server = WebServer(
            config,
            WebPorts(
                hub=hub,
                incidents=self.incidents,
                callers=self.callers,
                health=self.health,
                spy=self.spy,
            ),
            sessions=sessions,
            clock=clock,
            secret=b"test-secret-0123456789abcdef",
            hasher=hasher,
        )

    async def __aenter__(self) -> Env:
        await self.server.__aenter__()
        return Env(
            self.server,
            self.hub,
            self.clock,
            self.incidents,
            self.callers,
            self.health,
            self.spy,
            self.sessions,
        )

    async def __aexit__(self, *exc: object) -> None:
        await self.server.__aexit__(None, None, None)


@pytest.fixture
async def env(make_env: Callable[..., _EnvContext]) -> AsyncIterator[Env]:
    async with make_env() as running:
        yield running


# ------------------------------------------------------------------------------ HTTP client

_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_DATA_CSRF = re.compile(r'data-csrf="([^"]+)"')


class Client:
    """A browser-ish HTTP client over loopback: keeps cookies, sends our Origin on writes."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=10),
        )
        self.csrf = ""

    async def close(self) -> None:
        await self.http.close()

    def url(self, path: str) -> str:
        return self.env.base + path

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self.http.get(self.url(path), allow_redirects=False, **kw)

    async def login_form_token(self) -> str:
        async with await self.get("/login") as resp:
            assert resp.status == 200
            match = _FORM_TOKEN.search(await resp.text())
            assert match
            return match.group(1)

    async def login(
        self, employee_id: str, password: str = PASSWORD, *, origin: str | None = None
    ) -> aiohttp.ClientResponse:
        token = await self.login_form_token()
        resp = await self.http.post(
            self.url("/login"),
            data={"csrf_token": token, "employee_id": employee_id, "password": password},
            headers={"Origin": origin or self.env.origin},
            allow_redirects=False,
        )
        await resp.read()
        if resp.status == 303:
            async with await self.get("/desk") as desk:
                match = _DATA_CSRF.search(await desk.text())
                if match is None:  # a page without the desktop (no seat): take the logout form
                    match = _FORM_TOKEN.search(await desk.text())
                assert match
                self.csrf = match.group(1)
        return resp

    async def post_json(
        self,
        path: str,
        data: object,
        *,
        csrf: str | None = None,
        origin: str | None = "",
        headers: dict[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        h = {"Content-Type": "application/json"}
        if origin == "":
            h["Origin"] = self.env.origin
        elif origin is not None:
            h["Origin"] = origin
        token = self.csrf if csrf is None else csrf
        if token:
            h["X-CSRF-Token"] = token
        h.update(headers or {})
        resp = await self.http.post(self.url(path), json=data, headers=h, allow_redirects=False)
        await resp.read()
        return resp

    async def ws(
        self, path: str = "/ws/seat", *, origin: str | None = ""
    ) -> aiohttp.ClientWebSocketResponse:
        headers = {}
        if origin == "":
            headers["Origin"] = self.env.origin
        elif origin is not None:
            headers["Origin"] = origin
        ws_url = self.url(path).replace("http://", "ws://", 1)
        return await self.http.ws_connect(ws_url, headers=headers, autoping=True)


@pytest.fixture
async def clients(env: Env) -> AsyncIterator[Callable[[], Client]]:
    made: list[Client] = []

    def _new() -> Client:
        client = Client(env)
        made.append(client)
        return client

    yield _new
    for client in made:
        await client.close()
