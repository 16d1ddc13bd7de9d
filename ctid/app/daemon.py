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
from datetime import date
from typing import Any

import structlog

from ctid.app.desk import DeskEvents
from ctid.app.screens import Screens
from ctid.app.secrets import site_secret
from ctid.app.spool import WriteSpool
from ctid.app.spy_store import SqlSpyStore
from ctid.app.web_ports import (
    Callbacks,
    CallControl,
    CallerSearch,
    DaemonHealth,
    IncidentForms,
    IncidentWorkflow,
    Links,
    OriginateWatch,
    Reports,
    RosterAdmin,
    RosterSeats,
    SpyControl,
)
from ctid.asterisk.actions import AmiPbxControl
from ctid.asterisk.agi import AgiSession, FastAgiServer
from ctid.asterisk.ami import AmiConnection
from ctid.asterisk.frame import Frame
from ctid.asterisk.translate import translate
from ctid.bus import EventBus
from ctid.calls.ivr import run_ivr
from ctid.calls.service import BusItem, CallService, Resync
from ctid.calls.spy import SpyService
from ctid.calls.tracker import UnknownSeatError
from ctid.config import Config
from ctid.core.clock import Clock, SystemClock
from ctid.core.errors import CtidError
from ctid.core.events import ChannelSnapshot, QueueEntrySnapshot, QueueMemberSnapshot
from ctid.core.ids import SeatId
from ctid.db import check_schema, create_engine
from ctid.db.engine import session_factory
from ctid.db.schema import AuditLog
from ctid.mail import OutboxWorker, SmtpMailer
from ctid.reports import kpi
from ctid.rotation.desk import RotaDeskView, state_summary
from ctid.rotation.enforcer import LiveSeat, RotaEnforcer
from ctid.rotation.roster import RosterStore
from ctid.rotation.scheduler import RotaScheduler
from ctid.screenpop.hub import PopHub
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.store import IncidentStore
from ctid.web.server import WebPorts, WebServer

log = structlog.get_logger(__name__)


class TrackerSeats:
    """The rota enforcer's view of live seats, from the call tracker (`LiveSeats`)."""

    def __init__(self, daemon: Daemon) -> None:
        self._d = daemon
        self.known = False
        """Memberships are known once the first resync after login has been applied."""

    def live(self, seat_id: SeatId) -> LiveSeat | None:
        if not self.known:
            return None
        try:
            state = self._d.calls.tracker.seat(seat_id)
        except UnknownSeatError:  # a seat added to the roster after the tracker was built
            return None
        tier = next((s.tier for s in self._d.cfg.seats if s.id == seat_id), None)
        # The tracker knows which queues a seat is in, not its penalty there; ctid's own config
        # gives the penalty it would set (a wrong penalty set by hand is not corrected).
        penalties = {q.name: q.tiers.get(tier, 0) if tier else 0 for q in self._d.cfg.queues}
        return LiveSeat(
            on_call=state.activity != "idle",
            paused=state.paused,
            pause_reason=state.pause_reason,
            memberships={q: penalties.get(q, 0) for q in state.queues},
        )


class Daemon:
    """Everything ctid runs. `async with Daemon(cfg) as d: await d.serve(stop)`."""

    def __init__(
        self,
        cfg: Config,
        *,
        clock: Clock | None = None,
        config_path: str | None = None,
        wall_clock_scheduler: bool = True,
    ) -> None:
        """`wall_clock_scheduler=False` leaves APScheduler out (tests run the rota's transition
        jobs themselves, on their fake clock)."""
        self.cfg = cfg
        self._use_scheduler = wall_clock_scheduler
        self._config_path = config_path
        self.clock: Clock = clock or SystemClock(cfg.site.timezone)
        self.bus: EventBus[BusItem] = EventBus()
        self.engine = create_engine(
            cfg.database_url, sqlite_busy_timeout_ms=cfg.database.sqlite_busy_timeout_ms
        )
        self.sessions = session_factory(self.engine)
        self.secret = site_secret(cfg)
        self.spool = WriteSpool()
        # Rota work (AMI pause round trips, roster reads) runs in its own task, in order, so the
        # event path never waits for it.
        self.rota_work = WriteSpool()
        self.rota_applied = asyncio.Event()
        """Set once the rota has been applied after the first resync (tests wait on it)."""
        self.incidents = IncidentStore(
            self.sessions,
            self.clock,
            cfg,
            link_secret=hmac.new(self.secret, b"ctid-tickets-links", hashlib.sha256).digest(),
        )
        self.directory = CallerDirectory(self.sessions, self.clock, cfg)
        self.roster = RosterStore(self.sessions, self.clock, cfg)
        self.hub = PopHub()
        self.ami = AmiConnection(cfg.ami, self._on_frame, on_login=self._on_login)
        self.pbx = AmiPbxControl(self.ami)
        self.live_seats = TrackerSeats(self)
        self.rota = RotaEnforcer(
            source=self.roster,
            pbx=self.pbx,
            live=self.live_seats,
            clock=self.clock,
            queues=cfg.queues,
        )
        self.screens = Screens(
            cfg,
            self.hub,
            self.clock,
            self.directory,
            self.incidents,
            tracker=lambda: self.calls.tracker,
            desk_summary=self._desk_summary,
            ami_health=self._ami_summary,
            kpis_today=self._kpis_today,
        )
        self.desk = DeskEvents(
            cfg,
            self.incidents,
            self.spool,
            self.screens,
            on_seat_free=self._seat_free,
            on_pause_changed=self._pause_changed,
            on_auto_pause=self._audit_auto_pause,
        )
        self.calls = CallService(
            cfg,
            self.pbx,
            self.desk,
            self.bus.publish,
            wall_epoch=lambda: self.clock.utcnow().timestamp(),
        )
        self.spy = SpyService(
            cfg, self.pbx, self.calls.tracker, SqlSpyStore(self.sessions), now=self.calls.events_now
        )
        self.originates = OriginateWatch()
        """OriginateResponse events for click-to-call (subscribed to the bus in `serve`)."""
        self.agi = FastAgiServer(cfg.agi, {"ivr": self._ivr}, self._agi_fallback)
        self.mail = OutboxWorker(self.sessions, SmtpMailer(cfg.smtp), self.clock, cfg.smtp)
        loop_time: Callable[[], float] = lambda: asyncio.get_running_loop().time()  # noqa: E731
        self.web = WebServer(
            cfg,
            WebPorts(
                hub=self.hub,
                incidents=IncidentForms(self.incidents, self.directory),
                callers=CallerSearch(self.directory, self.incidents),
                health=DaemonHealth(self.ami, self.sessions, self.spool, loop_time),
                spy=SpyControl(self.spy),
                seats=RosterSeats(self.rota, cfg),
                workflow=IncidentWorkflow(
                    self.incidents, self.directory, lambda: self.desk.incidents
                ),
                calls=CallControl(cfg, self.calls, self.pbx, self.rota, self.originates),
                callbacks=Callbacks(self.incidents, self.directory),
                links=Links(self.incidents, self.directory),
                roster=RosterAdmin(self.roster, self.rota, self.clock),
                reports=Reports(self.sessions, cfg),
            ),
            sessions=self.sessions,
            clock=self.clock,
            secret=self.secret,
        )
        self._stack = AsyncExitStack()

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

    async def _after_event(self, item: BusItem) -> None:
        """Runs after the call service on every bus item: a resync means the seats' real state is
        known again, so the rota's pauses and memberships are applied for now."""
        if isinstance(item, Resync):
            self.live_seats.known = True
            await self.rota_work.submit("rota apply after resync", self._rota_apply_now)

    # ------------------------------------------------------------------ rota hooks

    async def _rota_apply_now(self) -> None:
        await self.rota.apply_now()
        self.rota_applied.set()

    async def _seat_free(self, seat: str) -> None:
        if self.live_seats.known:
            await self.rota_work.submit(
                f"rota: {seat} free", lambda: self.rota.seat_call_ended(SeatId(seat))
            )

    async def _pause_changed(self, seat: str) -> None:
        if self.live_seats.known:
            await self.rota_work.submit(
                f"rota: {seat} pause changed", lambda: self.rota.seat_pause_changed(SeatId(seat))
            )

    async def _audit_auto_pause(self, seat: str, message: str) -> None:
        async def write() -> None:
            async with self.sessions.begin() as s:
                s.add(
                    AuditLog(
                        at=self.clock.utcnow(),
                        actor="ctid",
                        action="seat_paused",
                        target=seat,
                        detail={"reason": "rna", "message": message},
                    )
                )

        await self.spool.submit(f"audit auto-pause {seat}", write)

    # ------------------------------------------------------------------ screens

    def _desk_summary(self) -> Mapping[str, object]:
        try:
            return state_summary(self.rota.current)
        except CtidError as exc:  # before the rota is loaded, or a calendar gap: say so, go on
            return {"error": str(exc)}

    def _ami_summary(self) -> Mapping[str, object]:
        h = self.ami.health()
        return {
            "connected": h.logged_in,
            "logged_in": h.logged_in,
            "reconnects": h.reconnects,
            "events_per_s": round(h.events_per_s, 1),
            "last_error": h.last_error,
        }

    async def _kpis_today(self, day: date) -> Any:
        # In a thread with its own loop and engine: the KPI arithmetic is CPU work that would
        # otherwise hold up the event path (the pop budget is 20 ms).
        return await asyncio.to_thread(_kpis_in_thread, self.cfg, day)

    # ------------------------------------------------------------------ IVR

    async def _ivr(self, session: AgiSession) -> None:
        result = await run_ivr(
            session,
            self.cfg,
            RotaDeskView(self.rota.current),
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
            unplayable_prompts=session.unplayable,
        )

    async def _agi_fallback(self, session: AgiSession) -> None:
        # The dialplan's fail-open default queue is already set: leave it, just say so.
        log.warning("agi_fallback", channel=session.channel, route=session.route)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Daemon:
        stack = self._stack
        stack.push_async_callback(self.engine.dispose)
        await check_schema(self.engine, config_path=self._config_path)
        seeded = await self.roster.seed_from_config()
        log.info("roster_loaded", report=str(seeded))
        await self.rota.load()
        await stack.enter_async_context(self.agi)  # binds: "port in use" fails here
        await stack.enter_async_context(self.web)
        stack.push_async_callback(self.ami.close)
        stack.callback(self.calls.close)
        stack.callback(self.hub.close)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def serve(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        loops: list[Callable[[], Coroutine[Any, Any, None]]] = [
            self.bus.run,
            self.ami.run,
            self.agi.run,
            self.web.run,
            self.spool.run,
            self.rota_work.run,
            self.screens.run,
        ]
        if self.cfg.smtp.enabled:
            loops.append(self.mail.run)
        self.bus.subscribe(self.calls.handle)
        self.bus.subscribe(self.spy.on_event)  # after the tracker has seen each event
        self.bus.subscribe(self.originates.on_event)
        self.bus.subscribe(self._after_event)
        scheduler = RotaScheduler(self.rota) if self._use_scheduler else contextlib.nullcontext()
        async with scheduler, asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(fn()) for fn in loops]
            log.info(
                "ctid_started",
                agi_port=self.agi.port,
                web=self.web.public_url,
                ami=f"{self.cfg.ami.host}:{self.cfg.ami.port}",
            )
            if ready is not None:
                ready.set()
            await stop.wait()
            log.info("ctid_stopping")
            for task in tasks:
                task.cancel()


def _kpis_in_thread(cfg: Config, day: date) -> Any:
    async def compute() -> Any:
        engine = create_engine(
            cfg.database_url, sqlite_busy_timeout_ms=cfg.database.sqlite_busy_timeout_ms
        )
        try:
            report = await kpi.compute(session_factory(engine), cfg, day, day, "total")
            return report.total
        finally:
            await engine.dispose()

    return asyncio.run(compute())


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
