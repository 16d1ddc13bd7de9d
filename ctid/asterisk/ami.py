"""The supervised AMI connection (`AmiConnection`): connect, log in, resync hook, heartbeat,
backoff, and actions matched to their replies by ActionID, never re-sent after a reconnect."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import structlog

# Only panoramisk's ActionID generator: the framing, sending and reconnecting of its
# AMIProtocol/Manager are replaced by ctid's own protocol (`ami_protocol`) and this supervisor.
from panoramisk.utils import IdGenerator

from ctid.asterisk.ami_protocol import (
    AmiProtocol,
    EventFilter,
    LinkStats,
    encode_action,
    normalise_fields,
)
from ctid.asterisk.frame import Frame
from ctid.config import AmiConfig
from ctid.core.errors import (
    AmiActionError,
    AmiDisconnectedError,
    AmiError,
    AmiTimeoutError,
)

log = structlog.get_logger(__name__)

ActionFields = Mapping[str, str] | Sequence[tuple[str, str]]


@dataclass(frozen=True)
class AmiHealth:
    """A snapshot for the wallboard and `/health`. Times are event-loop time."""

    connected: bool
    """The TCP link is up (maybe not logged in yet)."""
    logged_in: bool
    last_event_at: float | None
    reconnects: int
    """How many times the link was logged in again after the first login."""
    events_per_s: float
    last_error: str | None
    events_total: int = 0
    """Events received since start, over every link (a Prometheus counter)."""
    refused: Mapping[str, int] = field(default_factory=dict)
    """`Response: Error` answers since start, by action name."""


class AmiConnection:
    """One supervised AMI client. `run()` keeps it connected until cancelled or closed.

    Actions are correlated strictly by ActionID, time out, and fail at once while the link is
    down; actions in flight when it drops fail with `AmiDisconnectedError` and are never re-sent.
    """

    def __init__(
        self,
        cfg: AmiConfig,
        on_frame: Callable[[Frame], None],
        *,
        on_login: Callable[[], Awaitable[None]] | None = None,
        on_link_change: Callable[[bool], None] | None = None,
        rng: random.Random | None = None,
        events: EventFilter | None = None,
        on_read: Callable[[], None] | None = None,
        after_read: Callable[[], None] | None = None,
    ) -> None:
        """`events`, `on_read` and `after_read`: see `AmiProtocol` (the event names `on_frame`
        wants; callbacks before and after the frames of each socket read)."""
        self._cfg = cfg
        self._on_frame = on_frame
        self._events = events
        self._on_read = on_read
        self._after_read = after_read
        self._on_login = on_login
        self._on_link_change = on_link_change
        self._rng = rng if rng is not None else random.Random()
        self._login_fields = [
            ("Username", cfg.username),
            ("Secret", cfg.secret.get_secret_value()),
        ]
        # Refuse a secret with CR/LF at startup, not on every login attempt.
        encode_action("Login", "check", self._login_fields)
        self._ids = IdGenerator("ctid")
        self._stats = LinkStats()
        self._proto: AmiProtocol | None = None
        self._logged_in = False
        self._ready = asyncio.Event()
        self._reconnects = 0
        self._ever_logged_in = False
        self._last_error: str | None = None
        self._last_logged_failure: tuple[str, str] | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop `run()` (even mid-connect or mid-login), drop the link, fail pending actions."""
        task = self._run_task
        if not self._closing:
            self._closing = True
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()
        self._drop_link("closed by ctid")
        if task is not None and not task.done() and task is not asyncio.current_task():
            # Wait for run() to unwind, without letting our own cancellation be swallowed.
            await asyncio.wait({task})

    async def run(self) -> None:
        """Connect, log in, call `on_login`, ping; on loss back off and repeat. Until cancelled."""
        if self._run_task is not None:
            raise AmiError("AmiConnection.run() is already running")
        task = asyncio.current_task()
        assert task is not None
        self._run_task = task
        attempt = 0
        try:
            while not self._closing:
                if await self._session():
                    attempt = 0
                if self._closing:
                    break
                delay = self._backoff(attempt)
                attempt += 1
                log.info(
                    "ami_reconnect_in",
                    delay_s=round(delay, 3),
                    attempt=attempt,
                    last_error=self._last_error,
                )
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            # Our own close() cancelled us: finish quietly. Anyone else's cancel propagates.
            if self._closing and task.uncancel() == 0:
                return
            raise
        finally:
            self._drop_link("closed by ctid")

    # The `timeout=` parameters below are the agreed public API (ruff ASYNC109 prefers callers to
    # wrap calls in asyncio.timeout); they map to AmiTimeoutError rather than TimeoutError.
    async def wait_logged_in(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until logged in and the `on_login` hook has finished."""
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            raise AmiTimeoutError(f"AMI not logged in within {timeout}s") from None

    # ------------------------------------------------------------------ actions

    async def action(
        self,
        name: str,
        fields: ActionFields = (),
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Frame:
        """Send one action; return its Response frame (an event list is awaited to its end)."""
        response, _ = await self._request(name, fields, timeout, listing=False)
        return response

    async def list_action(
        self,
        name: str,
        fields: ActionFields = (),
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[Frame]:
        """Send an event-list action (`CoreShowChannels`, `QueueStatus`, ...); return its items."""
        _, items = await self._request(name, fields, timeout, listing=True)
        return items

    def summary(self) -> dict[str, object]:
        """The link's health in a few words, for the wallboard."""
        h = self.health()
        return {
            "connected": h.logged_in,
            "logged_in": h.logged_in,
            "reconnects": h.reconnects,
            "events_per_s": round(h.events_per_s, 1),
            "last_error": h.last_error,
        }

    def health(self) -> AmiHealth:
        proto = self._proto
        stats = self._stats
        rate = stats.events_per_s
        if stats.window_start is not None:
            # A quiet link must read as quiet, not as the last busy second.
            idle = asyncio.get_running_loop().time() - stats.window_start
            if idle >= 2.0:
                rate = stats.window_events / idle
        return AmiHealth(
            connected=proto is not None and proto.is_open,
            logged_in=self._logged_in,
            last_event_at=stats.last_event_at,
            reconnects=self._reconnects,
            events_per_s=rate,
            last_error=self._last_error,
            events_total=stats.events_total,
            refused=dict(stats.refused),
        )

    async def _request(
        self, name: str, fields: ActionFields, limit_s: float | None, *, listing: bool
    ) -> tuple[Frame, list[Frame]]:
        pairs = normalise_fields(fields)
        # Validate before looking at the link, so a bad value is refused the same way always.
        encode_action(name, "check", pairs)
        proto = self._proto
        if proto is None or not self._logged_in:
            raise AmiDisconnectedError(f"{name}: AMI is not connected")
        return await self._exchange(proto, name, pairs, limit_s, listing=listing)

    async def _exchange(
        self,
        proto: AmiProtocol,
        name: str,
        pairs: Sequence[tuple[str, str]],
        limit_s: float | None,
        *,
        listing: bool,
    ) -> tuple[Frame, list[Frame]]:
        limit = self._cfg.action_timeout_s if limit_s is None else limit_s
        action_id = str(self._ids())
        pending = proto.send(name, action_id, pairs, listing=listing)
        try:
            async with asyncio.timeout(limit):
                return await pending.future
        except TimeoutError:
            raise AmiTimeoutError(f"{name}: no answer within {limit}s") from None
        finally:
            if not pending.future.done() or pending.future.cancelled():
                proto.forget(action_id)

    # ------------------------------------------------------------------ supervision

    async def _session(self) -> bool:
        """One link from connect to loss. True if it got logged in."""
        cfg = self._cfg
        loop = asyncio.get_running_loop()
        proto = AmiProtocol(
            self._on_frame,
            self._stats,
            events=self._events,
            on_read=self._on_read,
            after_read=self._after_read,
        )
        self._proto = proto
        logged_in = False
        try:
            try:
                async with asyncio.timeout(cfg.connect_timeout_s):
                    await loop.create_connection(lambda: proto, cfg.host, cfg.port)
            except (OSError, TimeoutError) as exc:
                reason = str(exc) or f"no connection within {cfg.connect_timeout_s}s"
                self._failed("ami_connect_failed", reason)
                return False
            log.info("ami_connected", host=cfg.host, port=cfg.port)
            try:
                await self._exchange(proto, "Login", self._login_fields, None, listing=False)
            except AmiActionError as exc:
                self._failed("ami_login_failed", exc.message or "login refused")
                return False
            except AmiTimeoutError:
                self._failed("ami_login_failed", f"no answer to Login in {cfg.action_timeout_s}s")
                return False
            except AmiDisconnectedError:
                self._failed("ami_login_failed", "link closed during login")
                return False
            logged_in = True
            self._logged_in = True
            self._last_logged_failure = None
            if self._ever_logged_in:
                self._reconnects += 1
            self._ever_logged_in = True
            log.info(
                "ami_logged_in",
                host=cfg.host,
                port=cfg.port,
                username=cfg.username,
                version=proto.version,
                reconnects=self._reconnects,
            )
            self._link_changed(True)
            if self._on_login is not None:
                try:
                    await self._on_login()
                except Exception as exc:
                    if proto.lost.done():
                        return True
                    # A resync that failed leaves our picture of the PBX unknown: start over.
                    log.exception("ami_on_login_failed")
                    self._last_error = f"on_login failed: {exc!r}"
                    proto.abort(self._last_error)
                    return True
            self._ready.set()
            await self._heartbeat(proto)
            return True
        finally:
            self._ready.clear()
            was_up = self._logged_in
            self._logged_in = False
            self._proto = None
            # abort() is a no-op on a link already lost, and settles `lost` at once otherwise.
            proto.abort("closed by ctid" if self._closing else "session ended")
            if logged_in:
                if not self._closing:
                    reason = proto.lost.result()
                    self._last_error = reason
                    log.warning("ami_link_lost", reason=reason)
                if was_up:
                    self._link_changed(False)

    async def _heartbeat(self, proto: AmiProtocol) -> None:
        """Ping every interval; a Ping unanswered for an interval means a dead (half-open) link."""
        interval = self._cfg.ping_interval_s
        while True:
            await asyncio.wait({proto.lost}, timeout=interval)
            if proto.lost.done():
                return
            try:
                await self._exchange(proto, "Ping", (), interval, listing=False)
            except AmiTimeoutError:
                proto.abort(f"no answer to Ping within {interval}s")
                return
            except AmiDisconnectedError:
                return
            except AmiActionError:
                pass  # an answer, even an error, proves the link is alive

    def _drop_link(self, reason: str) -> None:
        proto = self._proto
        if proto is not None:
            proto.abort(reason)

    def _backoff(self, attempt: int) -> float:
        """Exponential with jitter: about min * 2^attempt, capped, never below min."""
        low, high = self._cfg.reconnect_min_s, self._cfg.reconnect_max_s
        base = min(high, low * 2.0 ** min(attempt, 32))
        return max(low, min(high, self._rng.uniform(base / 2.0, base)))

    def _failed(self, event: str, reason: str) -> None:
        """Log a connect/login failure once per distinct reason, not on every retry."""
        self._last_error = reason
        key = (event, reason)
        if key != self._last_logged_failure:
            self._last_logged_failure = key
            # A refused login needs a person (wrong secret, ACL); a refused connect may heal.
            emit = log.error if event == "ami_login_failed" else log.warning
            emit(
                event,
                reason=reason,
                host=self._cfg.host,
                port=self._cfg.port,
                username=self._cfg.username,
            )

    def _link_changed(self, up: bool) -> None:
        if self._on_link_change is None:
            return
        try:
            self._on_link_change(up)
        except Exception:
            log.exception("ami_handler_failed", hook="on_link_change", up=up)
