"""The composition root: builds every concrete object from the config, owns startup and shutdown.

One `AsyncExitStack` unwinds resources in reverse; one `TaskGroup` holds the loops. Signals are
handled only here (`run`); tests drive `Daemon` with their own `stop`/`ready` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import signal
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from ctid.app.desk import DeskEvents
from ctid.app.secrets import site_secret
from ctid.app.spool import WriteSpool
from ctid.asterisk.actions import AmiPbxControl
from ctid.asterisk.agi import AgiSession, FastAgiServer
from ctid.asterisk.ami import AmiConnection
from ctid.asterisk.frame import Frame
from ctid.asterisk.translate import translate
from ctid.bus import EventBus
from ctid.calls.ivr import run_ivr
from ctid.calls.service import BusItem, CallService, Resync
from ctid.config import Config
from ctid.core.clock import Clock, SystemClock
from ctid.core.events import ChannelSnapshot, QueueEntrySnapshot, QueueMemberSnapshot
from ctid.core.ids import SeatId
from ctid.db import check_schema, create_engine
from ctid.db.engine import session_factory
from ctid.mail import OutboxWorker, SmtpMailer
from ctid.rotation.calendar import CalendarEntry, ServiceCalendar, parse_holidays
from ctid.rotation.lunch import LunchRotation
from ctid.rotation.plan import DeskState, desk_state
from ctid.tickets.store import IncidentStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DeskNow:
    """The rotation's desk state as the IVR reads it."""

    state: DeskState
    tiers: Mapping[str, str]

    @property
    def mode(self) -> Literal["closed", "open", "lunch"]:
        return self.state.mode

    @property
    def tiers_on_duty(self) -> frozenset[str]:
        return frozenset(self.tiers[s] for s in self.state.on_duty if s in self.tiers)

    @property
    def overflow_expert_to_ordinary(self) -> bool:
        return self.state.overflow_expert_to_ordinary

    def seat_on_duty(self, seat_id: str) -> bool:
        return SeatId(seat_id) in self.state.on_duty


class Daemon:
    """Everything ctid runs. `async with Daemon(cfg) as d: await d.serve(stop)`."""

    def __init__(
        self, cfg: Config, *, clock: Clock | None = None, config_path: str | None = None
    ) -> None:
        self.cfg = cfg
        self._config_path = config_path
        self.clock: Clock = clock or SystemClock(cfg.site.timezone)
        self.bus: EventBus[BusItem] = EventBus()
        self.engine = create_engine(
            cfg.database_url, sqlite_busy_timeout_ms=cfg.database.sqlite_busy_timeout_ms
        )
        self.sessions = session_factory(self.engine)
        self.secret = site_secret(cfg)
        self.spool = WriteSpool()
        self.incidents = IncidentStore(
            self.sessions,
            self.clock,
            cfg,
            link_secret=hmac.new(self.secret, b"ctid-tickets-links", hashlib.sha256).digest(),
        )
        self.desk = DeskEvents(cfg, self.incidents, self.spool)
        self._stack = AsyncExitStack()
        self._calendar = ServiceCalendar.from_config(cfg.hours, cfg.site.timezone, self._holidays())
        self._rotation = LunchRotation.from_config(cfg.lunch, cfg.seats)
        self._tiers = {s.id: s.tier for s in cfg.seats}
        self.ami = AmiConnection(cfg.ami, self._on_frame, on_login=self._on_login)
        self.pbx = AmiPbxControl(self.ami)
        self.calls = CallService(
            cfg,
            self.pbx,
            self.desk,
            self.bus.publish,
            wall_epoch=lambda: self.clock.utcnow().timestamp(),
        )
        self.agi = FastAgiServer(cfg.agi, {"ivr": self._ivr}, self._agi_fallback)
        self.mail = OutboxWorker(self.sessions, SmtpMailer(cfg.smtp), self.clock, cfg.smtp)

    def _holidays(self) -> tuple[CalendarEntry, ...]:
        path = self.cfg.hours.holidays_file
        if path is None:
            return ()
        return parse_holidays(path.read_text(encoding="utf-8"), str(path))

    # ------------------------------------------------------------------ AMI edge

    def _on_frame(self, frame: Frame) -> None:
        event = translate(frame, asyncio.get_running_loop().time())
        if event is not None:
            self.bus.publish(event)

    async def _on_login(self) -> None:
        """Rebuild calls and seats from the PBX after every login (the bus applies it in order)."""
        loop = asyncio.get_running_loop()
        chans = [translate(f, loop.time()) for f in await self.pbx.core_show_channels()]
        items = [translate(f, loop.time()) for f in await self.pbx.queue_status()]
        self.bus.publish(
            Resync(
                tuple(c for c in chans if isinstance(c, ChannelSnapshot)),
                tuple(m for m in items if isinstance(m, QueueMemberSnapshot)),
                tuple(e for e in items if isinstance(e, QueueEntrySnapshot)),
            )
        )

    # ------------------------------------------------------------------ IVR

    def desk_now(self) -> DeskNow:
        state = desk_state(
            self.clock.now(), calendar=self._calendar, rotation=self._rotation, seats=self.cfg.seats
        )
        return DeskNow(state, self._tiers)

    async def _ivr(self, session: AgiSession) -> None:
        result = await run_ivr(
            session,
            self.cfg,
            self.desk_now(),
            caller_number=session.caller_number,
            lookup=self.desk.incident_status,
            callbacks=self.desk.ivr_callback,
        )
        log.info(
            "ivr_done",
            channel=session.channel,
            route=result.route.action,
            queue=result.route.queue,
            choice=result.route.choice,
            hung_up=result.hung_up,
        )

    async def _agi_fallback(self, session: AgiSession) -> None:
        # The dialplan's fail-open default queue is already set: leave it, just say so.
        log.warning("agi_fallback", channel=session.channel, route=session.route)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Daemon:
        stack = self._stack
        stack.push_async_callback(self.engine.dispose)
        await check_schema(self.engine, config_path=self._config_path)
        await stack.enter_async_context(self.agi)  # binds: "port in use" fails here
        stack.push_async_callback(self.ami.close)
        stack.callback(self.calls.close)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def serve(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        loops: list[Callable[[], Coroutine[Any, Any, None]]] = [
            self.bus.run,
            self.ami.run,
            self.agi.run,
        ]
        if self.cfg.smtp.enabled:
            loops.append(self.mail.run)
        self.bus.subscribe(self.calls.handle)
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(fn()) for fn in loops]
            log.info(
                "ctid_started",
                agi_port=self.agi.port,
                ami=f"{self.cfg.ami.host}:{self.cfg.ami.port}",
            )
            if ready is not None:
                ready.set()
            await stop.wait()
            log.info("ctid_stopping")
            for task in tasks:
                task.cancel()


async def run(cfg: Config, config_path: str | None = None) -> None:
    """`ctid run`: serve until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with Daemon(cfg, config_path=config_path) as daemon:
        await daemon.serve(stop)
    log.info("ctid_stopped")
