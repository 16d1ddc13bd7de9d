"""The composition root: builds every concrete object from the config, owns startup and shutdown.

One `AsyncExitStack` unwinds resources in reverse; one `TaskGroup` holds the loops. Signals are
handled only here (`run`); tests drive `Daemon` with their own `stop`/`ready` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from ctid.asterisk.actions import AmiPbxControl
from ctid.asterisk.agi import AgiSession, FastAgiServer
from ctid.asterisk.ami import AmiConnection
from ctid.asterisk.frame import Frame
from ctid.asterisk.translate import translate
from ctid.bus import EventBus
from ctid.calls.ivr import run_ivr
from ctid.calls.service import BusItem, CallService, Resync
from ctid.calls.tracker import (
    CallAnswered,
    CallEnded,
    CallStarted,
    CallTracker,
    Notice,
    SeatRingEnded,
    SeatRingStarted,
    SeatStateChanged,
)
from ctid.config import Config
from ctid.core.clock import Clock, SystemClock
from ctid.core.effects import (
    AlertSupervisors,
    FlagCall,
    NotifySeat,
    RecordAnswer,
    RecordRingMiss,
    RequestCallback,
)
from ctid.core.events import ChannelSnapshot, QueueEntrySnapshot, QueueMemberSnapshot
from ctid.core.ids import SeatId
from ctid.db import check_schema, create_engine
from ctid.db.engine import session_factory
from ctid.mail import OutboxWorker, SmtpMailer
from ctid.rotation.calendar import CalendarEntry, ServiceCalendar, parse_holidays
from ctid.rotation.lunch import LunchRotation
from ctid.rotation.plan import DeskState, desk_state

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


@dataclass
class DeskEvents:
    """Where the call service's notices and desk-facing effects go: the log, and (as they are
    wired) the pop hub, the wallboard and the stores."""

    answers: dict[str, RecordAnswer] = field(default_factory=dict)
    flags: dict[str, set[str]] = field(default_factory=dict)

    async def notice(self, notice: Notice, tracker: CallTracker) -> None:
        match notice:
            case CallStarted():
                log.info("call_started", call_id=notice.call_id, caller=notice.caller_num)
            case SeatRingStarted():
                log.info(
                    "seat_ringing", call_id=notice.call_id, seat=notice.seat, queue=notice.queue
                )
            case SeatRingEnded():
                log.info(
                    "seat_ring_ended",
                    call_id=notice.call_id,
                    seat=notice.seat,
                    reason=notice.reason,
                    ring_s=round(notice.ring_s, 2),
                )
            case CallAnswered():
                log.info(
                    "call_answered",
                    call_id=notice.call_id,
                    seat=notice.seat,
                    ring_s=round(notice.ring_s, 2),
                )
            case CallEnded():
                rec = notice.record
                self.answers.pop(rec.call_id, None)
                self.flags.pop(rec.call_id, None)
                log.info(
                    "call_ended",
                    call_id=rec.call_id,
                    outcome=rec.outcome,
                    answered_by=rec.answered_by,
                    rings=len(rec.ring_attempts),
                    talk_s=None if rec.talk_s is None else round(rec.talk_s, 1),
                )
            case SeatStateChanged():
                log.info(
                    "seat_state", seat=notice.seat, status=notice.new.status, why=notice.reason
                )
            case _:
                pass

    async def effect(
        self,
        effect: AlertSupervisors
        | NotifySeat
        | RecordRingMiss
        | RecordAnswer
        | FlagCall
        | RequestCallback,
    ) -> None:
        match effect:
            case AlertSupervisors():
                log.warning(
                    "supervisor_alert",
                    kind=effect.kind,
                    text=effect.message,
                    seat=effect.seat,
                    call_id=effect.call_id,
                )
            case NotifySeat():
                log.info("seat_notice", seat=effect.seat, kind=effect.kind)
            case RecordRingMiss():
                log.warning(
                    "ring_deadline_missed",
                    call_id=effect.call_id,
                    seat=effect.seat,
                    consecutive=effect.consecutive,
                )
            case RecordAnswer():
                self.answers[effect.call_id] = effect
            case FlagCall():
                self.flags.setdefault(effect.call_id, set()).add(effect.flag)
            case RequestCallback():
                log.info("callback_requested", call_id=effect.call_id, reason=effect.reason)


class Daemon:
    """Everything ctid runs. `async with Daemon(cfg) as d: await d.serve(stop)`."""

    def __init__(
        self, cfg: Config, *, clock: Clock | None = None, config_path: str | None = None
    ) -> None:
        self.cfg = cfg
        self._config_path = config_path
        self.clock: Clock = clock or SystemClock(cfg.site.timezone)
        self.bus: EventBus[BusItem] = EventBus()
        self.desk = DeskEvents()
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
        self.engine = create_engine(
            cfg.database_url, sqlite_busy_timeout_ms=cfg.database.sqlite_busy_timeout_ms
        )
        self.sessions = session_factory(self.engine)
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
            lookup=self._no_lookup,
            callbacks=self._log_callback,
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

    async def _no_lookup(self, number: str) -> None:
        return None

    async def _log_callback(self, number: str, reason: str) -> None:
        log.info("callback_requested", number=number, reason=reason)

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
