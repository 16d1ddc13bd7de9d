"""Supervisor listen / whisper / barge: `SpyService` starts, switches and stops listen-in
sessions on a seat's exact channel, follows them through the PBX's events and audits each step
(see docs/architecture.md, "Listening in"); its vocabulary is `spy_types`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

import structlog

from ctid.calls.seats import channel_device, interface_device
from ctid.calls.service import Resync
from ctid.calls.spy_targets import SeatLeg
from ctid.calls.spy_types import (
    END_BOUND_S,
    AuditValue,
    NotSupervisorError,
    SeatNotOnCallError,
    Session,
    SpyAudit,
    SpyLegNotEndedError,
    SpyPbx,
    SpyRequestFailedError,
    SpyRow,
    SpySessionEndedError,
    SpyStore,
    SpyView,
    SupervisorAlerts,
    UnknownSpySessionError,
    check_exact_target,
    local_tag,
    spy_caller_id,
    spy_mode,
)
from ctid.config import Config, SupervisorConfig
from ctid.core.errors import (
    AmiActionError,
    AmiDisconnectedError,
    AmiError,
    AmiTimeoutError,
    CtidError,
)
from ctid.core.events import (
    ChannelHungUp,
    OriginateResponded,
    SpyStarted,
    SpyStopped,
)
from ctid.core.frames import SpyAlertFrame
from ctid.core.ids import CallId, Channel, SeatId

log = structlog.get_logger(__name__)

SPY_ITEMS: tuple[type, ...] = (OriginateResponded, SpyStarted, SpyStopped, ChannelHungUp, Resync)
"""The bus items `SpyService.on_event` reads (subscribe it to these)."""

_KEEP_ENDED = 256
"""Ended sessions kept in memory (for `session()` and for late PBX events), newest first."""
_KEEP_EARLY = 64
"""OriginateResponse events remembered whose ActionID ctid had not learnt yet."""


class SeatLegs(Protocol):
    """Which seat talks on which exact channel now (`ctid.calls.spy_targets.TalkingSeats` fits)."""

    def leg(self, seat_id: SeatId) -> SeatLeg | None: ...


def _leg(s: Session) -> Channel | None:
    """The channel to hang up to end a session: the phone's, else the ChanSpy channel."""
    return s.spy_channel or s.chanspy


# --------------------------------------------------------------------------- the service


class SpyService:
    """Starts, switches and stops spy sessions; `on_event` follows them (subscribe it to the bus
    after the call service and the `SeatLegs`, so both have seen each event's story first).

    `now` gives epoch seconds on the events' clock (`CallService.events_now`), so request times
    line up with the ChanSpyStart/ChanSpyStop times that come from the PBX's `Timestamp`.
    """

    def __init__(
        self,
        cfg: Config,
        pbx: SpyPbx,
        legs: SeatLegs,
        store: SpyStore,
        *,
        now: Callable[[], float],
        alerts: SupervisorAlerts | None = None,
        end_bound_s: float = END_BOUND_S,
    ) -> None:
        self._cfg = cfg
        self._alerts = alerts
        self._end_bound_s = end_bound_s
        self._pbx = pbx
        self._legs = legs
        self._store = store
        self._now = now
        self._supervisors = {s.employee_id: s for s in cfg.supervisors}
        self._devices = {interface_device(s.phone) for s in cfg.supervisors}
        self._sessions: dict[int, Session] = {}
        self._by_action: dict[str, Session] = {}
        self._by_spy_channel: dict[Channel, Session] = {}
        self._by_chanspy: dict[Channel, Session] = {}
        self._by_tag: dict[str, Session] = {}
        self._lingering: dict[Channel, Session] = {}
        self._early: dict[str, OriginateResponded] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # Store writes go out one at a time in the order they were asked for (asyncio.Lock is
        # FIFO), so the audit trail's order is the order things happened here.
        self._writes = asyncio.Lock()

    # ------------------------------------------------------------------ reading

    def session(self, session_id: int) -> SpyView | None:
        s = self._sessions.get(session_id)
        return None if s is None else s.view()

    def sessions(self) -> tuple[SpyView, ...]:
        """The sessions that have not ended, oldest first."""
        return tuple(s.view() for s in self._sessions.values() if not s.ended)

    def lingering(self) -> tuple[Channel, ...]:
        """ChanSpy channels still running after their session's phone hung up (a silent spied
        call: they end with its next audio frame or with the call)."""
        return tuple(self._lingering)

    # ------------------------------------------------------------------ requests

    async def start(self, supervisor_id: str, seat_id: str, mode: str) -> SpyView:
        """Ring `supervisor_id`'s phone into ChanSpy on `seat_id`'s live call. An unfinished
        session of the same supervisor (one phone, one session) is hung up first."""
        sup = self._supervisor(supervisor_id)
        async with self._lock(sup.employee_id):
            return await self._start(sup, seat_id, mode, switched_from=None)

    async def switch(self, session_id: int, mode: str, actor: str | None = None) -> SpyView:
        """Listen ↔ whisper ↔ barge: hang up the session's spy channel and start a new session
        in `mode` on the same seat (if its call is still live). Returns the new session."""
        spy_mode(mode)
        s = self._get(session_id)
        who = self._supervisor(actor or s.supervisor).employee_id
        sup = self._supervisor(s.supervisor)
        async with self._lock(sup.employee_id):
            if s.ended:
                raise SpySessionEndedError(f"spy session {session_id} has already ended")
            if s.mode == mode:
                return s.view()
            self._target(s.seat_id)  # still on a call? Else keep the session as it is.
            await self._request_stop(s, who, "switch")
            return await self._start(sup, s.seat_id, mode, switched_from=s.id)

    async def stop(self, session_id: int, actor: str | None = None) -> SpyView:
        """End a session (Hangup of the supervisor's spy channel). Stopping an ended session is a
        no-op; a session still ringing the supervisor is hung up as soon as its channel is known."""
        s = self._get(session_id)
        who = self._supervisor(actor or s.supervisor).employee_id
        async with self._lock(s.supervisor):
            await self._request_stop(s, who, "stop")
            return s.view()

    # ------------------------------------------------------------------ events

    def on_event(self, item: object) -> Awaitable[None] | None:
        """The bus handler: OriginateResponse, ChanSpyStart/Stop, the spy channel's Hangup and
        the snapshot after each AMI login. A hangup of a channel no session knows (nearly all of
        them) is done with at once; the rest returns what the bus awaits."""
        if isinstance(item, ChannelHungUp) and not (
            item.channel in self._by_spy_channel or item.channel in self._by_chanspy
        ):
            return None
        return self._on_event(item)

    async def _on_event(self, item: object) -> None:
        try:
            match item:
                case OriginateResponded():
                    await self._on_originate(item)
                case SpyStarted():
                    await self._on_spy_started(item)
                case SpyStopped():
                    await self._on_spy_stopped(item)
                case ChannelHungUp():
                    await self._on_hangup(item)
                case Resync():
                    await self._on_resync(item)
                case _:
                    pass
        except CtidError as exc:
            log.error("spy_event_failed", item=type(item).__name__, error=str(exc))

    # ------------------------------------------------------------------ internals: requests

    def _supervisor(self, employee_id: str) -> SupervisorConfig:
        sup = self._supervisors.get(employee_id)
        if sup is None:
            raise NotSupervisorError(f"{employee_id!r} is not a supervisor with a configured phone")
        return sup

    def _get(self, session_id: int) -> Session:
        s = self._sessions.get(session_id)
        if s is None:
            raise UnknownSpySessionError(f"no spy session {session_id}")
        return s

    def _lock(self, supervisor_id: str) -> asyncio.Lock:
        return self._locks.setdefault(supervisor_id, asyncio.Lock())

    def _target(self, seat_id: str) -> tuple[CallId, Channel]:
        """The seat's live call and its own leg's exact channel (ChanSpy's target), as the
        call story told it (`SeatLegs`)."""
        if self._cfg.seat(seat_id) is None:
            raise SeatNotOnCallError(f"no seat {seat_id!r} is configured")
        leg = self._legs.leg(SeatId(seat_id))
        if leg is None:
            raise SeatNotOnCallError(f"seat {seat_id} is not on a live call")
        return leg.call_id, leg.channel

    async def _start(
        self, sup: SupervisorConfig, seat_id: str, mode: str, *, switched_from: int | None
    ) -> SpyView:
        mode_ = spy_mode(mode)
        call_id, channel = self._target(seat_id)
        check_exact_target(channel)
        seat_cfg = self._cfg.seat(seat_id)
        assert seat_cfg is not None
        # One phone, one leg: an older leg must be gone (proved by the PBX) before a new one.
        for old in [s for s in self._sessions.values() if s.supervisor == sup.employee_id]:
            if not old.ended:
                await self._request_stop(old, sup.employee_id, "superseded")
            if not old.ended:  # still ringing the phone: it is hung up once it answers
                await self._await_end(old)
        requested_at = self._utcnow()
        detail: dict[str, AuditValue] = {
            "call_id": call_id,
            "mode": mode_,
            "channel": channel,
            "phone": sup.phone,
        }
        if switched_from is not None:
            detail["switched_from"] = switched_from
        # The audit row is written before anything is sent: no spying without a trail.
        async with self._writes:
            session_id = await self._store.add(
                SpyRow(sup.employee_id, seat_id, call_id, mode_, requested_at),
                SpyAudit(requested_at, sup.employee_id, "spy_requested", seat_id, detail),
            )
        s = Session(session_id, sup, SeatId(seat_id), call_id, mode_, channel, requested_at)
        self._remember(s)
        self._by_tag[s.tag] = s
        log.info(
            "spy_requested",
            session=session_id,
            supervisor=sup.employee_id,
            seat=seat_id,
            call_id=call_id,
            mode=mode_,
            channel=channel,
        )
        try:
            action_id = await self._pbx.start_listen_in(
                sup.phone, channel, mode_, spy_caller_id(mode_, seat_cfg.name, seat_id), s.tag
            )
        except AmiError as exc:
            # AmiDisconnectedError included: the connection never re-sends an action after a
            # reconnect, and neither does this service. A late ChanSpyStart (the PBX did get
            # it) is hung up: ctid has told the supervisor it failed.
            why = f"{type(exc).__name__}: {exc}"
            s.maybe_sent = isinstance(exc, AmiDisconnectedError | AmiTimeoutError)
            await self._fail(s, self._utcnow(), why)
            raise SpyRequestFailedError(
                f"the PBX did not take the spy request ({why}); it was not retried", s.view()
            ) from exc
        s.action_id = action_id
        if action_id:
            self._by_action[action_id] = s
            await self._save(s, "action", partial(self._store.set_action, s.id, action_id))
            early = self._early.pop(action_id, None)
            if early is not None:
                await self._apply_originate(s, early)
        return s.view()

    async def _request_stop(self, s: Session, actor: str, reason: str) -> None:
        """Ask the PBX to end the leg and wait (bounded) for the proof that it ended. A leg
        still ringing the supervisor has no channel yet: it is hung up as soon as one is known."""
        if s.ended:
            return
        if s.stop_reason is None:
            s.stop_reason = reason
            s.stop_by = actor
            entry = SpyAudit(
                self._utcnow(), actor, "spy_stop_requested", s.seat_id, s.detail(reason=reason)
            )
            await self._save(s, "stop_requested", partial(self._store.audit, entry))
            log.info("spy_stop_requested", session=s.id, by=actor, reason=reason)
        if _leg(s) is None:
            return
        try:
            await self._hangup(s, raise_errors=True)
        except SpyRequestFailedError:
            s.stop_reason, s.stop_by = None, ""  # not done: the supervisor may ask again
            raise
        await self._await_end(s)

    async def _await_end(self, s: Session) -> None:
        """The PBX's proof (the phone channel's Hangup) within the bound, or the
        supervisor and the log are told and `SpyLegNotEndedError` is raised."""
        try:
            async with asyncio.timeout(self._end_bound_s):
                await s.gone.wait()
            return
        except TimeoutError:
            pass
        s.hangup_sent = False  # a later stop sends the request again
        if _leg(s) is None:
            why = (
                f"listen-in session {s.id} is still ringing the supervisor's phone; it is hung "
                "up as soon as the phone answers, and no second call is made meanwhile"
            )
        else:
            why = (
                f"the PBX took the request but listen-in leg {_leg(s)} did not end within "
                f"{self._end_bound_s:g} s (no Hangup seen); it may still be running"
            )
        log.error(
            "spy_leg_not_ended",
            session=s.id,
            seat=s.seat_id,
            spy_channel=s.spy_channel,
            bound_s=self._end_bound_s,
        )
        entry = SpyAudit(
            self._utcnow(), s.stop_by or "ctid", "spy_end_unconfirmed", s.seat_id, s.detail()
        )
        await self._save(s, "end_unconfirmed", partial(self._store.audit, entry))
        if self._alerts is not None:
            self._alerts.publish_supervisor(
                SpyAlertFrame(
                    session=s.id, supervisor=s.supervisor, seat=s.seat_id, mode=s.mode, message=why
                )
            )
        raise SpyLegNotEndedError(why, s.view())

    async def _hangup(self, s: Session, *, raise_errors: bool) -> None:
        """One Hangup per leg, whoever asks first (a stop and a ChanSpyStart may both want it
        while the other waits on the store). The leg is the phone's channel; only when its
        OriginateResponse was lost, the ChanSpy channel (its end reaches the phone through Dial)."""
        leg = _leg(s)
        assert leg is not None
        if s.hangup_sent:
            return
        s.hangup_sent = True
        try:
            await self._pbx.end_listen_in(leg)
        except AmiActionError as exc:
            # "No such channel": it hung up by itself in the meantime.
            log.info("spy_channel_already_gone", session=s.id, error=exc.message)
        except AmiError as exc:
            s.hangup_sent = False
            log.error("spy_hangup_failed", session=s.id, channel=leg, error=str(exc))
            if raise_errors:
                raise SpyRequestFailedError(
                    f"could not hang up the spy channel ({exc}); it was not retried", s.view()
                ) from exc

    # ------------------------------------------------------------------ internals: events

    async def _on_originate(self, ev: OriginateResponded) -> None:
        s = self._by_action.get(ev.action_id)
        if s is None:
            # Maybe ours, arriving before `originate_application` returned its ActionID.
            self._early[ev.action_id] = ev
            while len(self._early) > _KEEP_EARLY:
                del self._early[next(iter(self._early))]
            return
        await self._apply_originate(s, ev)

    async def _apply_originate(self, s: Session, ev: OriginateResponded) -> None:
        if ev.response != "Success":
            if not s.ended:
                await self._end_unstarted(
                    s, self._time(ev.at), f"originate failed (reason {ev.reason})"
                )
            return
        if s.spy_channel is None:
            self._set_spy_channel(s, ev.channel)
            await self._save(
                s, "spy_channel", partial(self._store.set_spy_channel, s.id, ev.channel)
            )
        if s.stop_reason is not None and s.state == "requested":
            await self._hangup(s, raise_errors=False)

    def _match_spyer(self, ev: SpyStarted) -> Session | None:
        """The session this ChanSpy belongs to: by the Local channel's tag (`Local/spy<id>@…`),
        by a known channel, or (ChanSpy on the phone itself, before its OriginateResponse) the
        newest requested session of the supervisor whose phone this is, or a session whose
        Originate was lost with the link (the PBX may still have run it) on the same target."""
        spyer = ev.spyer_channel
        known = self._by_chanspy.get(spyer) or self._by_spy_channel.get(spyer)
        if known is not None:
            return known
        tag = local_tag(spyer)
        if tag is not None:
            return self._by_tag.get(tag)
        device = channel_device(spyer)
        if device not in self._devices:
            return None
        for s in reversed(self._sessions.values()):
            if s.spy_channel is not None or s.device != device:
                continue
            if s.state == "requested" or (
                s.state == "failed" and s.maybe_sent and s.target == ev.spyee_channel
            ):
                return s
        return None

    async def _on_spy_started(self, ev: SpyStarted) -> None:
        s = self._match_spyer(ev)
        if s is None:
            if channel_device(ev.spyer_channel) in self._devices or local_tag(ev.spyer_channel):
                log.warning(
                    "spy_not_requested_by_ctid", spyer=ev.spyer_channel, spyee=ev.spyee_channel
                )
            return
        if s.state in ("active", "stopped"):
            return  # a repeated ChanSpyStart
        if s.chanspy is None:
            self._set_chanspy(s, ev.spyer_channel)
        if s.spy_channel is None and local_tag(ev.spyer_channel) is None:
            self._set_spy_channel(s, ev.spyer_channel)  # ChanSpy runs on the phone itself
        await self._mark_started(s, self._time(ev.at), ev.spyee_channel)

    async def _mark_started(self, s: Session, at: datetime, spyee: str, **more: AuditValue) -> None:
        leg = _leg(s)
        assert leg is not None
        late = s.state == "failed"
        wrong = spyee != s.target
        if wrong:
            s.stop_reason, s.stop_by = "wrong_target", "ctid"
        elif late:
            s.stop_reason, s.stop_by = "reported_failed", "ctid"
        # Decided now: a stop() arriving while the store writes below does its own Hangup.
        hang_up = s.stop_reason is not None
        s.state = "active"
        s.started_at = at
        s.stopped_at = None
        # Recorded as it happened, even when it must be ended at once (below).
        entry = SpyAudit(
            at,
            s.supervisor,
            "spy_started",
            s.seat_id,
            s.detail(
                spy_channel=s.spy_channel,
                chanspy_channel=s.chanspy,
                spyee=spyee,
                late=late,
                wrong_target=wrong,
                **more,
            ),
        )
        await self._save(s, "started", partial(self._store.set_started, s.id, at, leg, entry))
        if wrong:
            log.error("spy_attached_to_wrong_channel", session=s.id, wanted=s.target, got=spyee)
        elif late:
            log.warning("spy_started_after_failure", session=s.id, reason=s.reason)
        else:
            log.info(
                "spy_started",
                session=s.id,
                seat=s.seat_id,
                mode=s.mode,
                spyer=leg,
                chanspy=s.chanspy,
            )
        if hang_up:
            await self._hangup(s, raise_errors=False)

    async def _on_spy_stopped(self, ev: SpyStopped) -> None:
        s = self._by_spy_channel.get(ev.spyer_channel)
        if s is not None and s.state == "active" and s.chanspy == s.spy_channel:
            # ChanSpy ran on the phone itself (the older shape): it has returned.
            await self._finish(s, self._time(ev.at), "ChanSpyStop")
            return
        s = self._by_chanspy.get(ev.spyer_channel)
        if s is not None:
            log.info("spy_chanspy_detached", session=s.id, chanspy=ev.spyer_channel)

    async def _on_hangup(self, ev: ChannelHungUp) -> None:
        s = self._by_spy_channel.get(ev.channel)
        if s is not None and not s.ended:
            await self._leg_hung_up(s, ev)
            await self._after_phone_gone(s)
            return
        s = self._by_chanspy.get(ev.channel)
        if s is None or s.chanspy_gone:
            return
        s.chanspy_gone = True
        if self._lingering.pop(ev.channel, None) is not None:
            log.info("spy_chanspy_ended", session=s.id, chanspy=ev.channel, cause=ev.cause)
        if s.id not in self._sessions:
            del self._by_chanspy[ev.channel]  # pruned while it lingered
        if s.spy_channel is None and not s.ended:
            # The phone's channel was never learnt (its OriginateResponse was lost): the end of
            # the ChanSpy channel is the only proof there is.
            await self._leg_hung_up(s, ev)

    async def _leg_hung_up(self, s: Session, ev: ChannelHungUp) -> None:
        at = self._time(ev.at)
        if s.state == "active":
            await self._finish(s, at, "phone channel hung up")
        else:
            # ChanSpy found nothing to attach to (the call ended first) or the phone hung up.
            await self._end_unstarted(
                s, at, f"spy channel hung up before ChanSpyStart (cause {ev.cause})"
            )

    async def _after_phone_gone(self, s: Session) -> None:
        """The phone is free; a ChanSpy channel still running (silent spied call) lingers
        without a phone: logged, tracked until its Hangup and hung up too, best effort."""
        chanspy = s.chanspy
        if chanspy is None or s.chanspy_gone or chanspy == s.spy_channel:
            return
        self._lingering[chanspy] = s
        log.info("spy_chanspy_lingering", session=s.id, chanspy=chanspy, phone=s.spy_channel)
        try:
            await self._pbx.end_chanspy(chanspy)
        except AmiError as exc:
            log.info("spy_chanspy_hangup_refused", session=s.id, chanspy=chanspy, error=str(exc))

    async def _on_resync(self, snap: Resync) -> None:
        """After a reconnect: sessions whose phone channel vanished while ctid was not listening
        end now; a session whose OriginateResponse was lost adopts its phone's channel; a
        ChanSpyStart missed meanwhile is taken from the ChanSpy channel the PBX shows."""
        present = {c.channel: c for c in snap.channels}
        for vanished in [c for c in self._lingering if c not in present]:
            s = self._lingering.pop(vanished)
            s.chanspy_gone = True
            log.info("spy_chanspy_ended", session=s.id, chanspy=vanished, cause=None)
        now = self._utcnow()
        for s in list(self._sessions.values()):
            if s.ended or (s.spy_channel is None and s.action_id is None):
                continue  # ended, or its Originate is still in flight (`start` settles it)
            spying = [
                c
                for c in snap.channels
                if c.application.lower() == "chanspy"
                and (c.channel == s.chanspy or local_tag(c.channel) == s.tag)
            ]
            if s.chanspy is None and spying:
                self._set_chanspy(s, spying[0].channel)
            if s.spy_channel is None:
                mine = [c for c in snap.channels if channel_device(c.channel) == s.device]
                if mine:
                    direct = [c for c in mine if c.application.lower() == "chanspy"]
                    adopted = (direct or mine)[0].channel
                    self._set_spy_channel(s, adopted)
                    if direct and s.chanspy is None:
                        self._set_chanspy(s, adopted)
                        spying = direct
                    await self._save(
                        s, "spy_channel", partial(self._store.set_spy_channel, s.id, adopted)
                    )
            found = present.get(s.spy_channel) if s.spy_channel is not None else None
            if found is None:
                gone = "spy channel gone during an AMI outage"
                if s.state == "active":
                    await self._finish(s, now, gone)
                else:
                    await self._end_unstarted(s, now, gone)
                if s.chanspy is not None and s.chanspy in present:
                    await self._after_phone_gone(s)
            elif s.state == "requested" and spying:
                # ChanSpyStart was missed while the link was down: it started by now at least.
                spyee = spying[0].application_data.split(",", 1)[0]
                await self._mark_started(s, now, spyee, seen_at_resync=True)

    async def _finish(self, s: Session, at: datetime, how: str) -> None:
        s.state = "stopped"
        s.stopped_at = at
        s.reason = s.stop_reason or "pbx"
        by = s.stop_by or "pbx"
        s.gone.set()
        entry = SpyAudit(
            at,
            s.supervisor,
            "spy_stopped",
            s.seat_id,
            s.detail(spy_channel=s.spy_channel, by=by, reason=s.reason, how=how),
        )
        log.info("spy_stopped", session=s.id, seat=s.seat_id, by=by, how=how)
        self._prune()
        await self._save(s, "stopped", partial(self._store.set_stopped, s.id, at, entry))

    async def _end_unstarted(self, s: Session, at: datetime, why: str) -> None:
        """It ended before ChanSpy attached: stopped if ctid asked for that, else failed."""
        if s.stop_reason is not None:
            await self._finish(s, at, why)
        else:
            await self._fail(s, at, why)

    async def _fail(self, s: Session, at: datetime, why: str) -> None:
        s.state = "failed"
        s.stopped_at = at
        s.reason = why
        s.gone.set()
        entry = SpyAudit(at, s.supervisor, "spy_failed", s.seat_id, s.detail(reason=why))
        log.warning("spy_failed", session=s.id, seat=s.seat_id, reason=why)
        self._prune()
        await self._save(s, "failed", partial(self._store.set_stopped, s.id, at, entry))

    async def _save(self, s: Session, step: str, write: Callable[[], Awaitable[None]]) -> None:
        """A store write after the request was sent: a database problem is logged, never
        allowed to undo or repeat what the PBX already does."""
        try:
            async with self._writes:
                await write()
        except CtidError as exc:
            log.error("spy_store_failed", session=s.id, step=step, error=str(exc))

    # ------------------------------------------------------------------ internals: bookkeeping

    def _remember(self, s: Session) -> None:
        self._sessions[s.id] = s

    def _set_spy_channel(self, s: Session, channel: Channel) -> None:
        s.spy_channel = channel
        self._by_spy_channel[channel] = s

    def _set_chanspy(self, s: Session, channel: Channel) -> None:
        s.chanspy = channel
        self._by_chanspy[channel] = s

    def _prune(self) -> None:
        ended = [sid for sid, s in self._sessions.items() if s.ended]
        for sid in ended[: max(0, len(ended) - _KEEP_ENDED)]:
            s = self._sessions.pop(sid)
            if s.action_id is not None:
                self._by_action.pop(s.action_id, None)
            if s.spy_channel is not None:
                self._by_spy_channel.pop(s.spy_channel, None)
            if s.chanspy is not None and s.chanspy not in self._lingering:
                self._by_chanspy.pop(s.chanspy, None)
            self._by_tag.pop(s.tag, None)

    def _utcnow(self) -> datetime:
        return datetime.fromtimestamp(self._now(), tz=UTC)

    def _time(self, at: float) -> datetime:
        """An event's time (events carry the PBX's clock, epoch seconds)."""
        return datetime.fromtimestamp(at, tz=UTC)
