"""Login sessions: password login with a constant-time failure path and per-employee/per-IP
failure limits, server-side sessions in `web_sessions` (only a hash of the cookie token is
stored), logout, expiry and their audit rows."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import structlog
from argon2 import PasswordHasher
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.accounts.users import hash_password, verify_password
from ctid.core.actor import Role
from ctid.core.clock import Clock
from ctid.core.errors import CtidError
from ctid.db.schema import AuditLog, User, WebSession

log = structlog.get_logger(__name__)

_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{20,100}$")
_LAST_SEEN_EVERY = timedelta(seconds=60)


class LoginError(CtidError):
    """A login was refused; the message is safe to show (it never says which part was wrong)."""


class LoginFailedError(LoginError):
    def __init__(self) -> None:
        super().__init__("wrong employee ID or password")


class LoginThrottledError(LoginError):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__("too many failed logins; try again later")
        self.retry_after_s = retry_after_s


def token_hash(token: str) -> str:
    """The `web_sessions.id` of a cookie token: its SHA-256, so a database leak is no login."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class FailureLimiter:
    """Counts failures per key in a sliding window; a key with `max_failures` failures in the
    last `window_s` seconds is refused until the oldest one ages out. Times come in as arguments
    (loop time), so it is a pure, testable object."""

    def __init__(self, max_failures: int, window_s: float, *, max_keys: int = 10_000) -> None:
        self._max = max_failures
        self._window = window_s
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` may try again (0: it may try now)."""
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and times[0] <= now - self._window:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        if len(times) < self._max:
            return 0.0
        return times[0] + self._window - now

    def failed(self, key: str, now: float) -> None:
        if key not in self._failures and len(self._failures) >= self._max_keys:
            self._prune(now)
        times = self._failures.setdefault(key, deque())
        times.append(now)
        while len(times) > self._max:
            times.popleft()

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)

    def forgive(self, key: str, at: float) -> None:
        """Take back the failure counted for `key` at `at` (the attempt succeeded)."""
        times = self._failures.get(key)
        if times is not None:
            with contextlib.suppress(ValueError):
                times.remove(at)

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._failures.items() if not t or t[-1] <= now - self._window]:
            del self._failures[key]
        if len(self._failures) >= self._max_keys:
            # Under a spray from many keys, forget the oldest rather than grow without bound.
            oldest = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in oldest[: len(oldest) // 2]:
                del self._failures[key]

    def __len__(self) -> int:
        return len(self._failures)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live login, as the request handlers see it."""

    session_id: str
    user_id: int
    employee_id: str
    name: str
    role: Role
    csrf_token: str
    expires_at: datetime


def _clip(value: str, limit: int) -> str:
    return "".join(ch for ch in value if ch.isprintable())[:limit]


class Authenticator:
    """Logs people in and out and resolves session cookies, against the database."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        ttl_s: int,
        hasher: PasswordHasher,
        employee_limit: FailureLimiter | None = None,
        ip_limit: FailureLimiter | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_s)
        self._hasher = hasher
        self.employee_limit = employee_limit or FailureLimiter(5, 900)
        self.ip_limit = ip_limit or FailureLimiter(20, 900)
        self._dummy_hash: asyncio.Task[str] | None = None
        # Bound the CPU a burst of logins can take (each Argon2 verify is ~50 ms on a core).
        self._verify_slots = asyncio.Semaphore(2)

    def prepare(self) -> None:
        """Start computing the decoy hash (~0.2 s of CPU, in a worker thread; `ctid run` calls
        this once ready), so the first failed login costs what later ones do. A login that comes
        first starts it, or waits for it."""
        self._decoy()

    def _decoy(self) -> asyncio.Task[str]:
        if self._dummy_hash is None:
            self._dummy_hash = asyncio.ensure_future(
                hash_password(self._hasher, secrets.token_urlsafe(24))
            )
        return self._dummy_hash

    async def _dummy(self) -> str:
        # shield: a login cancelled while the decoy is computed must not cancel it for the rest
        return await asyncio.shield(self._decoy())

    async def login(self, employee_id: str, password: str, ip: str) -> tuple[str, SessionInfo]:
        """Check the password and open a session; returns (cookie token, session).

        Unknown user, inactive user, no password and wrong password all take the same path
        (one Argon2 verification) and raise the same `LoginFailedError`."""
        employee_id = employee_id.strip()
        emp_key = "e:" + _clip(employee_id.casefold(), 64)
        ip_key = "i:" + ip
        dummy = await self._dummy()
        now_loop = asyncio.get_running_loop().time()
        wait = max(
            self.employee_limit.retry_after(emp_key, now_loop),
            self.ip_limit.retry_after(ip_key, now_loop),
        )
        if wait > 0:
            log.warning("web_login_throttled", employee_id=_clip(employee_id, 32), ip=ip)
            raise LoginThrottledError(wait)
        # Count the attempt as a failure before checking it and forgive it on success, so a
        # burst of parallel guesses cannot slip past the limit while the first ones verify.
        self.employee_limit.failed(emp_key, now_loop)
        self.ip_limit.failed(ip_key, now_loop)
        async with self._sessions() as db:
            user = (
                await db.execute(select(User).where(User.employee_id == employee_id))
            ).scalar_one_or_none()
        usable = user is not None and user.active and bool(user.password_hash)
        stored = user.password_hash if usable and user is not None else None
        async with self._verify_slots:
            ok = await verify_password(self._hasher, stored or dummy, password)
        ok = ok and stored is not None
        now = self._clock.utcnow()
        if not ok or user is None:
            await self._audit(
                now,
                _clip(employee_id, 32) or "-",
                "web_login_failed",
                None,
                {"ip": ip, "known": user is not None},
            )
            log.info("web_login_failed", employee_id=_clip(employee_id, 32), ip=ip)
            raise LoginFailedError()
        self.employee_limit.reset(emp_key)
        self.ip_limit.forgive(ip_key, now_loop)
        token = secrets.token_urlsafe(32)
        info = SessionInfo(
            session_id=token_hash(token),
            user_id=user.id,
            employee_id=user.employee_id,
            name=user.name,
            role=cast(Role, user.role),
            csrf_token=secrets.token_urlsafe(32),
            expires_at=now + self._ttl,
        )
        rehash = stored is not None and self._hasher.check_needs_rehash(stored)
        new_hash = await hash_password(self._hasher, password) if rehash else None
        async with self._sessions() as db, db.begin():
            db.add(
                WebSession(
                    id=info.session_id,
                    user_id=user.id,
                    csrf_token=info.csrf_token,
                    created_at=now,
                    expires_at=info.expires_at,
                    last_seen_at=now,
                )
            )
            if new_hash is not None:
                row = await db.get(User, user.id)
                if row is not None:
                    row.password_hash = new_hash
                    row.updated_at = now
            db.add(
                AuditLog(
                    at=now,
                    actor=user.employee_id,
                    action="web_login",
                    target=None,
                    detail={"ip": ip, "role": user.role},
                )
            )
        log.info("web_login", employee_id=user.employee_id, role=user.role, ip=ip)
        return token, info

    async def resolve(self, token: str | None) -> SessionInfo | None:
        """The live session of a cookie token; None if unknown, expired or the user is inactive."""
        if not token or not _TOKEN.match(token):
            return None
        sid = token_hash(token)
        now = self._clock.utcnow()
        async with self._sessions() as db:
            row = (
                await db.execute(
                    select(WebSession, User)
                    .join(User, User.id == WebSession.user_id)
                    .where(WebSession.id == sid)
                )
            ).one_or_none()
            if row is None:
                return None
            ws, user = row
            if ws.expires_at <= now or not user.active:
                await db.execute(delete(WebSession).where(WebSession.id == sid))
                await db.commit()
                log.info("web_session_expired", employee_id=user.employee_id)
                return None
            info = SessionInfo(
                session_id=sid,
                user_id=user.id,
                employee_id=user.employee_id,
                name=user.name,
                role=cast(Role, user.role),
                csrf_token=ws.csrf_token,
                expires_at=ws.expires_at,
            )
            if ws.last_seen_at is None or now - ws.last_seen_at >= _LAST_SEEN_EVERY:
                ws.last_seen_at = now
                await db.commit()
            return info

    async def logout(self, session: SessionInfo, ip: str) -> None:
        now = self._clock.utcnow()
        async with self._sessions() as db, db.begin():
            await db.execute(delete(WebSession).where(WebSession.id == session.session_id))
            db.add(
                AuditLog(
                    at=now,
                    actor=session.employee_id,
                    action="web_logout",
                    target=None,
                    detail={"ip": ip},
                )
            )
        log.info("web_logout", employee_id=session.employee_id, ip=ip)

    async def purge_expired(self) -> int:
        """Delete sessions past their expiry; returns how many."""
        now = self._clock.utcnow()
        async with self._sessions() as db, db.begin():
            result = await db.execute(delete(WebSession).where(WebSession.expires_at <= now))
        count = int(getattr(result, "rowcount", 0) or 0)
        if count:
            log.info("web_sessions_purged", count=count)
        return count

    async def _audit(
        self, at: datetime, actor: str, action: str, target: str | None, detail: object
    ) -> None:
        async with self._sessions() as db, db.begin():
            db.add(AuditLog(at=at, actor=actor, action=action, target=target, detail=detail))
