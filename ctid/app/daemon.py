"""The composition root: builds every concrete object from the config and owns startup and shutdown
(one `AsyncExitStack` for resources, named loop tasks with a bounded second shutdown phase)."""

# Signals are handled only here (`run`); tests drive `Daemon` with their own `stop`/`ready` events.

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import signal
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from datetime import date
from typing import Any, get_args

import structlog
from prometheus_client import CollectorRegistry

from ctid.accounts.sessions import Authenticator
from ctid.accounts.users import make_hasher
from ctid.app.health import DaemonHealth
from ctid.app.metrics import DaemonReadings
from ctid.app.secrets import site_secret
from ctid.asterisk.actions import AmiPbxControl
from ctid.asterisk.agi import AgiSession, FastAgiServer
from ctid.asterisk.ami import AmiConnection
from ctid.asterisk.frame import Frame
from ctid.asterisk.translate import EVENT_FILTER, translate
from ctid.bus import EventBus
from ctid.calls.call_channels import CallChannels, ChannelItems
from ctid.calls.control import CallControl, OriginateWatch
from ctid.calls.ivr import run_ivr
from ctid.calls.seat_desk import DeskItem, SeatDesk
from ctid.calls.seat_log_store import SqlSeatLog
from ctid.calls.service import CALL_INPUT, PBX_EFFECTS, BusItem, CallService, Resync
from ctid.calls.spy import SPY_ITEMS, SpyService
from ctid.calls.spy_control import SpyControl
from ctid.calls.spy_store import SqlSpyStore
from ctid.calls.spy_targets import TalkingSeats, TargetItems
from ctid.calls.survey import KeypadSurvey, SurveyItems
from ctid.config import Config
from ctid.core.clock import Clock, SystemClock, epoch
from ctid.core.errors import CtidError
from ctid.core.events import (
    AgentRang,
    ChannelSnapshot,
    OriginateResponded,
    QueueEntrySnapshot,
    QueueMemberSnapshot,
)
from ctid.core.ids import Channel
from ctid.db import check_schema, create_engine
from ctid.db.engine import session_factory
from ctid.journal import WriteJournal
from ctid.mail import OutboxWorker, SmtpMailer
from ctid.metrics import MetricItem, Metrics, Readings
from ctid.reports import kpi
from ctid.reports.incident_tables import IncidentReports
from ctid.reports.tables import Reports
from ctid.rotation.admin import RosterAdmin, RosterSeats
from ctid.rotation.desk import RotaDeskView
from ctid.rotation.enforcer import RotaEnforcer
from ctid.rotation.live import LiveSeatBoard, RotaFollower, SeatItem
from ctid.rotation.roster import RosterStore
from ctid.rotation.scheduler import RotaScheduler
from ctid.screenpop.hub import PopHub
from ctid.screenpop.screens import ScreenItem, SeatScreens
from ctid.spool import WriteSpool
from ctid.tickets.attach import CallAttach
from ctid.tickets.call_facts import CallFactStore
from ctid.tickets.callback_list import Callbacks
from ctid.tickets.callbacks import CallbackStore
from ctid.tickets.dialing import dial_string
from ctid.tickets.directory import CallerDirectory, phone_plan
from ctid.tickets.drafts import DeskDrafts
from ctid.tickets.forms import CallerSearch, IncidentForms
from ctid.tickets.incidents import IncidentStore
from ctid.tickets.intake import CallIntake, IntakeItem
from ctid.tickets.journal_ops import RETRY_ON, marker, registry
from ctid.tickets.kb import KnowledgeBase
from ctid.tickets.keypad import KeypadRatings
from ctid.tickets.links import Links
from ctid.tickets.profiles import CallerProfiles
from ctid.tickets.queue_log_follow import QueueLogFollower
from ctid.tickets.timeline import IncidentTimeline
from ctid.tickets.vocabulary import CATEGORIES
from ctid.tickets.workflow import IncidentWorkflow
from ctid.tickets.writes import CallWriter
from ctid.web.record_ports import RecordPorts
from ctid.web.server import WebPorts, WebServer

log = structlog.get_logger(__name__)

SHUTDOWN_GRACE_S = 5.0
"""How long a loop may take to end once cancelled before it is logged and abandoned."""


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
        self.callbacks = CallbackStore(self.sessions, self.clock, cfg)
        self.call_facts = CallFactStore(self.sessions, cfg)
        self.writer = CallWriter(self.incidents, self.call_facts, self.callbacks)
        self.journal = WriteJournal(
            cfg.site.data_dir / "journal.db",
            registry(self.writer, self.sessions, self.clock),
            marker(self.sessions),
            retry_on=RETRY_ON,
        )
        """Writes that wait for the database: fsynced on local disk, applied in order, once."""
        self.directory = CallerDirectory(self.sessions, self.clock, cfg)
        self.kb = KnowledgeBase(self.sessions, self.clock)
        self.timeline = IncidentTimeline(self.sessions, self.clock, cfg)
        self.profiles = CallerProfiles(self.sessions, self.clock, cfg)
        self.roster = RosterStore(self.sessions, self.clock, cfg)
        loop_time: Callable[[], float] = lambda: asyncio.get_running_loop().time()  # noqa: E731
        self.registry = CollectorRegistry()
        """The one Prometheus registry (served at /metrics); nothing registers anywhere else."""
        self.metrics = Metrics(
            self.registry,
            seats=[s.id for s in cfg.seats],
            now=loop_time,
            loop_lag_interval_s=cfg.metrics.loop_lag_interval_s,
            read=self._metric_readings,
        )
        self.hub = PopHub(
            alerts_kept=cfg.wallboard.alerts_kept, on_publish=self.metrics.pops.frame_published
        )
        self._read_at = 0.0  # when the frames being delivered arrived, on the events' clock
        self.ami = AmiConnection(
            cfg.ami,
            self._on_frame,
            on_login=self._on_login,
            # Events translate has no handler for are never built: half of a busy PBX's stream.
            events=EVENT_FILTER,
            on_read=self._on_read,
            # The read's events dispatched at once: a pop never waits behind other callbacks.
            after_read=self.bus.flush,
        )
        self.pbx = AmiPbxControl(self.ami)
        self.calls = CallService(
            cfg,
            self.pbx,
            self.bus.publish,
            self.bus.publish_next,
            wall_epoch=functools.partial(epoch, self.clock),
        )
        self.seat_board = LiveSeatBoard(cfg)
        self.rota = RotaEnforcer(
            source=self.roster,
            pbx=self.pbx,
            live=self.seat_board,
            clock=self.clock,
            queues=cfg.queues,
        )
        self.rota_follower = RotaFollower(
            self.seat_board, self.rota, self.rota_work, self.journal, self.clock
        )
        self.rota_applied = self.rota_follower.applied
        """Set once the rota has been applied after the first resync (tests wait on it)."""
        self.intake = CallIntake(
            cfg,
            self.incidents,
            self.call_facts,
            self.callbacks,
            self.journal,
            self.bus.publish,
            attached=self.timeline,
        )
        self.journal.register(self.intake.journal_ops())
        self.attach = CallAttach(self.timeline, self.intake, self.bus.publish)
        self.screens = SeatScreens(
            cfg,
            self.hub,
            self.clock,
            self.directory,
            self.incidents,
            desk_summary=self.rota.desk_summary,
            ami_health=self.ami.summary,
            kpis_today=self._kpis_today,
            kb=self.kb,
        )
        self.talking = TalkingSeats()
        """Which seat talks on which exact channel (the spy's targets), from the call story."""
        self.spy = SpyService(
            cfg,
            self.pbx,
            self.talking,
            SqlSpyStore(self.sessions),
            now=self.calls.events_now,
            alerts=self.hub,
        )
        self.queue_log = (
            QueueLogFollower.build(
                cfg,
                self.sessions,
                self.clock,
                self.writer,
            )
            if cfg.asterisk.queue_log
            else None
        )
        """Asterisk's queue_log, reconciled on start, after each AMI login and every poll."""
        self.roster_seats = RosterSeats(self.rota, cfg)
        self.seat_desk = SeatDesk(
            cfg,
            self.pbx,
            self.roster_seats,
            SqlSeatLog(self.sessions),
            self.hub,
            self.clock,
            now=self.calls.events_now,
        )
        self.originates = OriginateWatch()
        """OriginateResponse events for click-to-call (subscribed to the bus in `serve`)."""
        self.call_channels = CallChannels()
        """Caller channel → live call, from the call story (the survey and the IVR ask it)."""
        self.survey = KeypadSurvey(
            cfg, self.call_channels, KeypadRatings(self.sessions, self.incidents)
        )
        self.agi = FastAgiServer(
            cfg.agi, {"ivr": self._ivr, "survey": self.survey.handle}, self._agi_fallback
        )
        self.mail = OutboxWorker(self.sessions, SmtpMailer(cfg.smtp), self.clock, cfg.smtp)
        self.mail.watch(self.sessions)  # a queued mail wakes the outbox when its unit commits
        self.web = WebServer(
            cfg,
            WebPorts(
                hub=self.hub,
                incidents=IncidentForms(self.incidents, self.directory),
                callers=CallerSearch(self.directory, self.incidents, self.profiles),
                health=DaemonHealth(
                    self.ami,
                    self.sessions,
                    self.journal,
                    self.mail if cfg.smtp.enabled else None,
                    loop_time,
                ),
                spy=SpyControl(self.spy),
                seats=RosterSeats(self.rota, cfg),
                workflow=IncidentWorkflow(
                    self.incidents, self.directory, self.intake.live_incidents
                ),
                calls=CallControl(
                    cfg,
                    self.calls,
                    self.pbx,
                    RosterSeats(self.rota, cfg),
                    functools.partial(dial_string, plan=phone_plan(cfg.site)),
                    self.originates,
                ),
                callbacks=Callbacks(self.callbacks, self.directory),
                links=Links(self.incidents, self.directory),
                roster=RosterAdmin(self.roster, self.rota, self.clock),
                reports=Reports(self.sessions, cfg),
                seat_states=self.seat_desk,
                drafts=DeskDrafts(self.sessions, self.clock),
                records=RecordPorts(
                    kb=self.kb,
                    timeline=self.timeline,
                    attach=self.attach,
                    profiles=self.profiles,
                    caller_edit=self.directory,
                    reports=IncidentReports(self.sessions, cfg, self.clock, categories=CATEGORIES),
                ),
                metrics=self.metrics,
            ),
            auth=Authenticator(
                self.sessions, self.clock, ttl_s=cfg.web.session_ttl_s, hasher=make_hasher()
            ),
            clock=self.clock,
            secret=self.secret,
        )
        self._readings = DaemonReadings(
            ami=self.ami,
            bus=self.bus,
            write_queues={"journal": self.journal, "rota-work": self.rota_work},
            mail=self.mail,
            queue_log=self.queue_log,
            websocket_clients=lambda: self.web.open_sockets,
        )
        self._stack = AsyncExitStack()

    def _on_read(self) -> None:
        # One clock read per socket read: its frames arrived together.
        self._read_at = self.calls.events_now()

    def _on_frame(self, frame: Frame) -> None:
        event = translate(frame, self._read_at)
        if event is not None:
            if type(event) is AgentRang:  # the pop-latency clock starts at the frame's receipt
                self.metrics.pops.agent_called(event.linkedid)
            self.bus.publish(event)

    async def _metric_readings(self) -> Readings:
        return await self._readings()

    async def _on_login(self) -> None:
        """Rebuild calls and seats from the PBX after every login (the bus applies it in order)."""
        if self.queue_log is not None:  # calls that ended while the link was down
            self.queue_log.poke()
        chans = [translate(f, self.calls.events_now()) for f in await self.pbx.core_show_channels()]
        items = [translate(f, self.calls.events_now()) for f in await self.pbx.queue_status()]
        self.bus.publish(
            Resync(
                tuple(c for c in chans if isinstance(c, ChannelSnapshot)),
                tuple(m for m in items if isinstance(m, QueueMemberSnapshot)),
                tuple(e for e in items if isinstance(e, QueueEntrySnapshot)),
            )
        )

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
            lookup=self.intake.incident_status,
            callbacks=self.intake.ivr_callback,
        )
        if result.incident and not result.hung_up:
            await self._status_queried(session, result.incident)
        log.info(
            "ivr_done",
            channel=session.channel,
            route=result.route.action,
            queue=result.route.queue,
            choice=result.route.choice,
            hung_up=result.hung_up,
            unplayable_prompts=session.unplayable,
        )

    async def _status_queried(self, session: AgiSession, number: str) -> None:
        """The IVR's "incident status" option: a contact on the incident asked about."""
        call_id = self.call_channels.call_of_channel(Channel(session.channel)) or session.uniqueid
        if not call_id:
            return
        try:
            found = await self.incidents.get(number)
            if found is not None:
                await self.timeline.record_status_query(call_id, found.number, "ivr")
        except CtidError as exc:
            log.warning("ivr_status_contact_not_recorded", number=number, error=str(exc))

    async def _agi_fallback(self, session: AgiSession) -> None:
        # The dialplan's fail-open default queue is already set: leave it, just say so.
        log.warning("agi_fallback", channel=session.channel, route=session.route)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Daemon:
        stack = self._stack
        stack.push_async_callback(self.engine.dispose)
        stack.callback(self.journal.close)  # says how many writes wait for the next start
        await check_schema(self.engine, config_path=self._config_path)
        seeded = await self.roster.seed_from_config()
        log.info("roster_loaded", report=str(seeded))
        await self.rota.load()
        await self.seat_desk.restore_today()  # before the first event: a restart keeps the counts
        await stack.enter_async_context(self.agi)  # binds: "port in use" fails here
        await stack.enter_async_context(self.web)
        stack.push_async_callback(self.ami.close)
        stack.callback(self.calls.close)
        stack.callback(self.seat_desk.close)
        stack.callback(self.hub.close)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def _subscribe(self) -> None:
        """The bus's readers, in order: the call service first (it tells the story), the read
        models the spy and the survey ask (so they are current before anyone acts on an item),
        then the spy sessions and click-to-call (they read the same PBX events), then the
        story's readers."""
        bus = self.bus
        bus.subscribe(self.calls.handle, *CALL_INPUT)
        # Apart: a Hangup or a QueuePause waits for Asterisk's answer, not the bus.
        bus.subscribe(self.calls.carry_out, *PBX_EFFECTS, apart=True)
        bus.subscribe(self.talking.on_item, *get_args(TargetItems))
        bus.subscribe(self.call_channels.on_item, *get_args(ChannelItems))
        bus.subscribe(self.spy.on_event, *SPY_ITEMS)
        bus.subscribe(self.survey.on_item, *get_args(SurveyItems))
        bus.subscribe(self.originates.on_event, OriginateResponded)
        # Apart: an auto-pause's audit row waits for the journal's fsync.
        bus.subscribe(self.rota_follower.on_item, *get_args(SeatItem), apart=True)
        bus.subscribe(self.seat_desk.on_item, *get_args(DeskItem))
        # Apart: the intake waits for the journal's fsync, which must not hold the next pop.
        bus.subscribe(self.intake.on_item, *get_args(IntakeItem), apart=True)
        bus.subscribe(self.screens.on_item, *get_args(ScreenItem))
        bus.subscribe(self.metrics.calls.on_item, *get_args(MetricItem))

    async def serve(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "bus": self.bus.run,
            "ami": self.ami.run,
            "agi": self.agi.run,
            "web": self.web.run,
            "journal": self.journal.run,
            "rota-work": self.rota_work.run,
            "wallboard": self.screens.run,
            "seat-desk": self.seat_desk.run,
        }
        if self.cfg.smtp.enabled:
            loops["mail"] = self.mail.run
        if self.queue_log is not None:
            loops["queue-log"] = self.queue_log.run
        if self.cfg.metrics.enabled:
            loops["loop-lag"] = self.metrics.loop_lag.run
        self._subscribe()
        scheduler = RotaScheduler(self.rota) if self._use_scheduler else contextlib.nullcontext()
        async with scheduler:
            tasks = [asyncio.create_task(fn(), name=f"ctid-{name}") for name, fn in loops.items()]
            try:
                log.info(
                    "ctid_started",
                    agi_port=self.agi.port,
                    web=self.web.public_url,
                    ami=f"{self.cfg.ami.host}:{self.cfg.ami.port}",
                )
                if ready is not None:
                    ready.set()
                failed = asyncio.ensure_future(asyncio.wait(tasks, return_when="FIRST_COMPLETED"))
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait([failed, stopping], return_when="FIRST_COMPLETED")
                failed.cancel()
                stopping.cancel()
                log.info("ctid_stopping")
            finally:
                errors = await stop_tasks(tasks, SHUTDOWN_GRACE_S)
                await self._drain_journal()
            if errors:
                raise ExceptionGroup("ctid loops failed", errors)

    async def _drain_journal(self) -> None:
        """On stop: apply what the database takes within the grace; the rest stays on disk."""
        try:
            await asyncio.wait_for(self.journal.drain(), SHUTDOWN_GRACE_S)
        except TimeoutError:
            log.warning("journal_drain_timed_out", waiting=self.journal.backlog)


async def stop_tasks(tasks: list[asyncio.Task[None]], grace_s: float) -> list[Exception]:
    """Cancel the loops and wait for them up to `grace_s`; a loop that ignores its cancellation
    is logged and abandoned, so shutdown always ends. Returns the errors the loops ended with."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=grace_s)
    for task in pending:
        log.error("ctid_task_abandoned", task=task.get_name(), grace_s=grace_s)
    errors: list[Exception] = []
    for task in tasks:
        if task.done() and not task.cancelled():
            exc = task.exception()
            if isinstance(exc, Exception):
                log.error("ctid_task_failed", task=task.get_name(), exc_info=exc)
                errors.append(exc)
    return errors


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


async def run(
    cfg: Config, config_path: str | None = None, on_serving: Callable[[], None] | None = None
) -> None:
    """`ctid run`: serve until SIGTERM or SIGINT; SIGHUP reloads (see `ctid.app.lifecycle`).
    `on_serving` is called once the daemon's loops run (the CLI re-enables the GC there)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    from ctid.app.lifecycle import supervise  # sd_notify, watchdog and SIGHUP reload

    async with Daemon(cfg, config_path=config_path) as daemon:
        await supervise(daemon, stop, config_path, on_serving=on_serving)
    log.info("ctid_stopped")
