"""Making the PBX follow the plan: the pure decisions (which seats should be paused and why, which
queue memberships they should have) and the `RotaEnforcer` that applies them idempotently through
the queue-control port."""

# ctid owns queue membership (contrib's queues.conf has no static members); a change the PBX
# refuses is kept as a `RefusedChange` for ops to see until a later apply succeeds or no longer
# needs it.

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal, Protocol, assert_never

import structlog

from ctid.config import QueueConfig, SeatConfig
from ctid.core.clock import Clock
from ctid.core.errors import AmiActionError, CtidError
from ctid.core.ids import SeatId
from ctid.rotation.desk import CurrentRota, state_summary
from ctid.rotation.plan import DeskState, Mode
from ctid.rotation.rota import RosterSeat, Rota

log = structlog.get_logger(__name__)

CTID_REASONS = frozenset({"lunch", "closed"})
"""Pause reasons ctid owns. Any other pause (an agent's own, `rna` from the ring policy, one with
no reason set from a phone's feature code) belongs to someone else and is never touched."""


# --------------------------------------------------------------------------- ports


class SeatLive(Protocol):
    """A seat as the call tracker sees it on the PBX right now."""

    @property
    def on_call(self) -> bool: ...

    @property
    def paused(self) -> bool: ...

    @property
    def pause_reason(self) -> str: ...

    @property
    def memberships(self) -> Mapping[str, int]:
        """Queue name → penalty, for every queue the seat's interface is a member of."""
        ...


class LiveSeats(Protocol):
    """Live seat state (the call tracker). None = not known yet (before the first resync)."""

    def live(self, seat_id: SeatId) -> SeatLive | None: ...


class QueueControl(Protocol):
    """The PBX verbs the enforcer uses (`ctid.asterisk.actions.AmiPbxControl` has them)."""

    async def queue_pause(
        self, interface: str, paused: bool, reason: str = "", queue: str | None = None
    ) -> None: ...

    async def queue_add(
        self,
        queue: str,
        interface: str,
        member_name: str,
        penalty: int = 0,
        paused: bool = False,
        state_interface: str = "",
    ) -> None: ...

    async def queue_remove(self, queue: str, interface: str) -> None: ...


class RotaSource(Protocol):
    """Where the rota comes from (`RosterStore`)."""

    async def rota(self) -> Rota: ...

    async def revision(self) -> int: ...


@dataclass(frozen=True)
class LiveSeat:
    """A plain `SeatLive` (for the lead's tracker adapter and for tests)."""

    on_call: bool = False
    paused: bool = False
    pause_reason: str = ""
    memberships: Mapping[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class RotaPause:
    seat_id: SeatId
    reason: str


@dataclass(frozen=True)
class RotaUnpause:
    seat_id: SeatId
    reason: str
    """The ctid reason that no longer applies (for the log)."""


@dataclass(frozen=True)
class DeferPause:
    """The seat should be paused but is on a call: paused when the call ends, never cut off."""

    seat_id: SeatId
    reason: str


@dataclass(frozen=True)
class AddMember:
    seat_id: SeatId
    queue: str
    interface: str
    member_name: str
    penalty: int
    paused: bool = False
    reason: str = ""
    state_interface: str = ""
    """The device whose state app_queue watches (busy/ringing/unavailable) for this member."""


@dataclass(frozen=True)
class RemoveMember:
    seat_id: SeatId
    queue: str
    interface: str


def state_interface(interface: str) -> str:
    """The device app_queue should watch for a member: the interface itself (`PJSIP/seat1`);
    for a Local channel without its `/n` suffix (`Local/seat1@phones`)."""
    if interface.startswith("Local/") and interface.endswith("/n"):
        return interface[:-2]
    return interface


RefusedKind = Literal["add", "remove", "pause", "unpause"]


@dataclass(frozen=True)
class RefusedChange:
    """A rota change the PBX answered with `Response: Error` — e.g. removing a deactivated seat
    that queues.conf lists as a static member (`Member not dynamic`). Kept for ops (the roster
    page) until a later apply succeeds or no longer needs the change."""

    seat_id: SeatId
    kind: RefusedKind
    queue: str
    """The queue concerned; "" for a pause or unpause (every queue of the seat)."""
    interface: str
    message: str
    """Asterisk's own words (the `Message:` of the error response)."""
    first_at: datetime
    last_at: datetime
    attempts: int = 1


PauseAction = RotaPause | RotaUnpause | DeferPause
MemberAction = AddMember | RemoveMember
RotaAction = PauseAction | MemberAction
Desired = tuple[bool, str]
"""(paused, reason); reason is "" when not paused."""


# --------------------------------------------------------------------------- pure decisions


def desired_pauses(
    state: DeskState, seats: Iterable[SeatConfig], live: Mapping[SeatId, SeatLive]
) -> dict[SeatId, Desired]:
    """What each active seat's pause should be at `state`: paused with `lunch`/`closed` when the
    plan has it off duty, unpaused otherwise, and a pause that is not ctid's kept exactly as it
    is (an agent's own pause or an `rna` pause outranks the plan in both directions)."""
    out: dict[SeatId, Desired] = {}
    for seat in seats:
        sid = SeatId(seat.id)
        now = live.get(sid)
        if now is not None and now.paused and now.pause_reason not in CTID_REASONS:
            out[sid] = (True, now.pause_reason)
            continue
        reason = state.off_duty.get(sid)
        out[sid] = (True, reason) if reason is not None else (False, "")
    return out


def plan_actions(
    desired: Mapping[SeatId, Desired], live: Mapping[SeatId, SeatLive]
) -> list[PauseAction]:
    """The pause changes that take `live` to `desired`; empty when they already agree.

    Never touches a pause whose reason is not ctid's; defers pausing a seat on a call; seats the
    live state does not know yet are left for the next apply (after resync).
    """
    out: list[PauseAction] = []
    for sid, (want_paused, want_reason) in desired.items():
        now = live.get(sid)
        if now is None:
            continue
        ours = now.pause_reason in CTID_REASONS
        if now.paused and not ours:
            continue
        if want_paused:
            if now.paused and now.pause_reason == want_reason:
                continue
            if now.paused:
                out.append(RotaPause(sid, want_reason))  # lunch → closed: only the reason changes
            elif now.on_call:
                out.append(DeferPause(sid, want_reason))
            else:
                out.append(RotaPause(sid, want_reason))
        elif now.paused:
            out.append(RotaUnpause(sid, now.pause_reason))
    return out


def wanted_memberships(seat: RosterSeat, queues: Sequence[QueueConfig]) -> dict[str, int]:
    """Queue → penalty for a seat, from the queues' tiers in config; none for an inactive seat."""
    if not seat.active:
        return {}
    return {q.name: q.tiers[seat.tier] for q in queues if seat.tier in q.tiers}


def plan_memberships(
    seats: Sequence[RosterSeat],
    queues: Sequence[QueueConfig],
    desired: Mapping[SeatId, Desired],
    live: Mapping[SeatId, SeatLive],
    previous: Sequence[RosterSeat] = (),
) -> list[MemberAction]:
    """Queue member adds/removes that make the PBX match the roster (removes first).

    Only queues named in config are managed: a membership in any other queue is left alone. A
    wrong penalty is fixed by removing and re-adding. A new member joins already paused when
    the seat should be paused now. A seat whose interface changed since `previous` leaves its
    queues under the old interface.
    """
    managed = {q.name for q in queues}
    removes: list[MemberAction] = []
    adds: list[MemberAction] = []
    current = {s.id: s for s in seats}
    for old in previous:
        new = current.get(old.id)
        if new is not None and new.interface == old.interface:
            continue
        removes += [RemoveMember(old.id, q, old.interface) for q in wanted_memberships(old, queues)]
    for seat in seats:
        now = live.get(seat.id)
        if now is None:
            continue
        want = wanted_memberships(seat, queues)
        have = now.memberships
        for queue in sorted(have):
            if queue in managed and (queue not in want or want[queue] != have[queue]):
                removes.append(RemoveMember(seat.id, queue, seat.interface))
        paused, reason = desired.get(seat.id, (False, ""))
        for queue, penalty in sorted(want.items()):
            if have.get(queue) != penalty:
                adds.append(
                    AddMember(
                        seat.id,
                        queue,
                        seat.interface,
                        seat.name,
                        penalty,
                        paused,
                        reason,
                        state_interface(seat.interface),
                    )
                )
    return removes + adds


# --------------------------------------------------------------------------- the service


@dataclass(frozen=True)
class _Expected:
    paused: bool
    reason: str


@dataclass(frozen=True)
class _Overlay:
    """A live seat with the outcome of ctid's own successful action laid over it, until the
    tracker has seen the PBX's event for it (AMI answers before it sends the event)."""

    on_call: bool
    paused: bool
    pause_reason: str
    memberships: Mapping[str, int]


class RotaEnforcer:
    """Applies the desk state to the PBX: on start and every AMI (re)login (`apply_now`), at each
    transition (`on_transition`), when a call ends (`seat_call_ended`), when a pause changes
    (`seat_pause_changed`) and when the roster changes (`roster_changed`, `poll_roster`).

    Every trigger recomputes the whole desired state and compares it with the live state, so
    applying twice sends nothing the second time and a restart during lunch pauses nobody twice.
    One trigger at a time (a lock); a failed action is logged and retried by the next trigger.
    """

    def __init__(
        self,
        *,
        source: RotaSource,
        pbx: QueueControl,
        live: LiveSeats,
        clock: Clock,
        queues: Sequence[QueueConfig],
    ) -> None:
        self._source = source
        self._pbx = pbx
        self._live = live
        self._clock = clock
        self._queues = tuple(queues)
        self._lock = asyncio.Lock()
        self._current: CurrentRota | None = None
        self._revision: int | None = None
        self._expected: dict[SeatId, _Expected] = {}
        self._deferred: dict[SeatId, str] = {}
        self._applied_mode: Mode | None = None
        self._listeners: list[Callable[[], object]] = []
        self._refused: dict[tuple[SeatId, RefusedKind, str], RefusedChange] = {}

    # ------------------------------------------------------------------ state

    async def load(self) -> CurrentRota:
        """Read the rota from the source; call once before anything else."""
        revision = await self._source.revision()
        rota = await self._source.rota()
        self._revision = revision
        if self._current is None:
            self._current = CurrentRota(rota, self._clock)
        else:
            self._current.set(rota)
        return self._current

    @property
    def current(self) -> CurrentRota:
        if self._current is None:
            raise CtidError("RotaEnforcer.load() was not awaited")
        return self._current

    def state(self) -> DeskState:
        return self.current.state()

    @property
    def applied_mode(self) -> Mode | None:
        """The desk mode the last apply acted on (None before the first)."""
        return self._applied_mode

    @property
    def deferred(self) -> Mapping[SeatId, str]:
        """Seats whose pause waits for their call to end → the reason it will get."""
        return dict(self._deferred)

    def desk_summary(self) -> Mapping[str, object]:
        """The desk's state for the wallboard; before the rota is loaded (or in a calendar gap),
        what went wrong."""
        try:
            return state_summary(self.current)
        except CtidError as exc:
            return {"error": str(exc)}

    def refused(self) -> tuple[RefusedChange, ...]:
        """Rota changes the PBX refused and that are still wanted, by seat then queue."""
        return tuple(sorted(self._refused.values(), key=lambda r: (r.seat_id, r.queue, r.kind)))

    def add_reload_listener(self, listener: Callable[[], object]) -> None:
        """Called after every rota reload (the scheduler re-arms its trigger)."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ triggers

    async def apply_now(self) -> list[RotaAction]:
        """Compute the state for now and apply it, memberships included (start, AMI re-login).
        Forgets expectations: after a resync the live state is the truth."""
        async with self._lock:
            self._expected.clear()
            return await self._apply(memberships=True, reason="apply_now")

    async def on_transition(self, at: datetime | None = None) -> list[RotaAction]:
        """The scheduler's job: apply the state at `at` (a transition instant) or later. Using
        max(now, at) means a timer firing a hair early still sees the new mode."""
        async with self._lock:
            when = self._clock.now()
            if at is not None and at.astimezone(UTC) > when.astimezone(UTC):
                when = at
            return await self._apply(memberships=False, reason="transition", at=when)

    async def seat_call_ended(self, seat_id: str) -> list[RotaAction]:
        async with self._lock:
            return await self._apply(memberships=False, reason="call_ended")

    async def seat_pause_changed(self, seat_id: str) -> list[RotaAction]:
        """The tracker saw a pause event for the seat: its live state is current again."""
        async with self._lock:
            self._expected.pop(SeatId(seat_id), None)
            return await self._apply(memberships=False, reason="pause_changed")

    async def roster_changed(self) -> list[RotaAction]:
        """Reload the rota (a roster edit) and apply it, memberships included."""
        async with self._lock:
            previous = self.current.rota.seats
            await self.load()
            await self._notify()
            return await self._apply(memberships=True, reason="roster_changed", previous=previous)

    async def poll_roster(self) -> list[RotaAction]:
        """Pick up edits made by another process (`ctid roster ...`), and heal a missed
        transition: the scheduler calls this every few seconds."""
        revision = await self._source.revision()
        if revision != self._revision:
            log.info("rota_roster_changed", revision=revision, previous=self._revision)
            return await self.roster_changed()
        if self._applied_mode is not None and self.state().mode != self._applied_mode:
            log.warning("rota_transition_caught_up", mode=self.state().mode)
            return await self.on_transition()
        return []

    # ------------------------------------------------------------------ applying

    def _live_now(self, seats: Iterable[RosterSeat]) -> dict[SeatId, SeatLive]:
        out: dict[SeatId, SeatLive] = {}
        for seat in seats:
            now = self._live.live(seat.id)
            if now is None:
                continue
            exp = self._expected.get(seat.id)
            if exp is not None:
                if now.paused == exp.paused and (not exp.paused or now.pause_reason == exp.reason):
                    del self._expected[seat.id]  # the tracker caught up
                else:
                    now = _Overlay(now.on_call, exp.paused, exp.reason, now.memberships)
            out[seat.id] = now
        return out

    async def _apply(
        self,
        *,
        memberships: bool,
        reason: str,
        at: datetime | None = None,
        previous: Sequence[RosterSeat] = (),
    ) -> list[RotaAction]:
        rota = self.current.rota
        state = self.current.state(at)
        live = self._live_now(rota.seats)
        missing = [s.id for s in rota.seats if s.active and s.id not in live]
        if missing:
            log.info("rota_seats_not_live_yet", seats=missing)
        done: list[RotaAction] = []
        if memberships:
            desired = desired_pauses(state, rota.duty_seats, live)
            member_plan = plan_memberships(rota.seats, self._queues, desired, live, previous)
            self._forget_refusals(("add", "remove"), {_refusal_key(a) for a in member_plan})
            for member_action in member_plan:
                if await self._do(member_action, rota):
                    done.append(member_action)
            live = self._live_now(rota.seats)
        desired = desired_pauses(state, rota.duty_seats, live)
        pause_plan = plan_actions(desired, live)
        self._forget_refusals(
            ("pause", "unpause"),
            {_refusal_key(a) for a in pause_plan if not isinstance(a, DeferPause)},
        )
        for action in pause_plan:
            if await self._do(action, rota):
                done.append(action)
        # A deferral that is no longer planned (call ended, lunch over) is forgotten.
        planned = {a.seat_id for a in done if isinstance(a, DeferPause)}
        for sid in [s for s in self._deferred if s not in planned]:
            del self._deferred[sid]
        self._applied_mode = state.mode
        sent: list[RotaAction] = [a for a in done if not isinstance(a, DeferPause)]
        log.info(
            "rota_applied",
            trigger=reason,
            mode=state.mode,
            lunch_group=state.lunch_group,
            actions=len(sent),
            deferred=sorted(self._deferred),
        )
        return sent

    async def _do(self, action: RotaAction, rota: Rota) -> bool:
        """Carry out one action; False when it failed (logged) or was only a deferral."""
        match action:
            case DeferPause(seat_id=sid, reason=why):
                if self._deferred.get(sid) != why:
                    log.info("rota_pause_deferred", seat=sid, reason=why)
                self._deferred[sid] = why
                return True
            case RotaPause(seat_id=sid, reason=why):
                seat = rota.seat(sid)
                if seat is None:
                    return False
                ok = await self._call(
                    "rota_seat_paused",
                    self._pbx.queue_pause(seat.interface, True, why),
                    refusal=(_refusal_key(action), seat.interface),
                    seat=sid,
                    reason=why,
                )
                if ok:
                    self._expected[sid] = _Expected(True, why)
                return ok
            case RotaUnpause(seat_id=sid, reason=why):
                seat = rota.seat(sid)
                if seat is None:
                    return False
                ok = await self._call(
                    "rota_seat_unpaused",
                    self._pbx.queue_pause(seat.interface, False),
                    refusal=(_refusal_key(action), seat.interface),
                    seat=sid,
                    reason=why,
                )
                if ok:
                    self._expected[sid] = _Expected(False, "")
                return ok
            case AddMember():
                ok = await self._call(
                    "rota_member_added",
                    self._pbx.queue_add(
                        action.queue,
                        action.interface,
                        action.member_name,
                        action.penalty,
                        action.paused,
                        action.state_interface,
                    ),
                    refusal=(_refusal_key(action), action.interface),
                    seat=action.seat_id,
                    queue=action.queue,
                    penalty=action.penalty,
                    paused=action.paused,
                )
                if ok and action.paused and action.reason:
                    # QueueAdd cannot carry a reason; pausing the new member sets it.
                    ok = await self._call(
                        "rota_member_pause_reason_set",
                        self._pbx.queue_pause(action.interface, True, action.reason, action.queue),
                        refusal=(_refusal_key(action), action.interface),
                        seat=action.seat_id,
                        queue=action.queue,
                        reason=action.reason,
                    )
                if ok and action.paused:
                    self._expected[action.seat_id] = _Expected(True, action.reason)
                return ok
            case RemoveMember():
                return await self._call(
                    "rota_member_removed",
                    self._pbx.queue_remove(action.queue, action.interface),
                    refusal=(_refusal_key(action), action.interface),
                    seat=action.seat_id,
                    queue=action.queue,
                    interface=action.interface,
                )
            case _:
                assert_never(action)

    async def _call(
        self,
        name: str,
        step: Awaitable[None],
        *,
        refusal: tuple[tuple[SeatId, RefusedKind, str], str],
        **context: object,
    ) -> bool:
        key, interface = refusal
        try:
            await step
        except AmiActionError as exc:
            # The PBX said no (e.g. `Member not dynamic`): retrying will not help until someone
            # changes the PBX, so keep it where ops can see it, and say it as an error.
            self._refuse(key, interface, exc.message)
            log.error(
                "rota_change_refused",
                change=name.removeprefix("rota_"),
                ami_action=exc.action,
                message=exc.message,
                **context,
            )
            return False
        except CtidError as exc:
            # The AMI link may be down: the next apply_now (after re-login) retries.
            log.warning(name.replace("rota_", "rota_failed_", 1), error=str(exc), **context)
            return False
        self._refused.pop(key, None)
        log.info(name, **context)
        return True

    def _refuse(self, key: tuple[SeatId, RefusedKind, str], interface: str, message: str) -> None:
        now = self._clock.utcnow()
        before = self._refused.get(key)
        if before is None:
            self._refused[key] = RefusedChange(key[0], key[1], key[2], interface, message, now, now)
        else:
            self._refused[key] = replace(
                before, message=message, last_at=now, attempts=before.attempts + 1
            )

    def _forget_refusals(
        self, kinds: tuple[RefusedKind, ...], planned: set[tuple[SeatId, RefusedKind, str]]
    ) -> None:
        """A refused change the plan no longer needs (ops fixed the PBX, the roster moved on) is
        forgotten."""
        for key in [k for k in self._refused if k[1] in kinds and k not in planned]:
            del self._refused[key]

    async def _notify(self) -> None:
        for listener in self._listeners:
            try:
                result = listener()
                if inspect.isawaitable(result):
                    await result
            except CtidError:
                log.exception("rota_reload_listener_failed")


def _refusal_key(action: RotaAction) -> tuple[SeatId, RefusedKind, str]:
    match action:
        case AddMember(seat_id=sid, queue=queue):
            return sid, "add", queue
        case RemoveMember(seat_id=sid, queue=queue):
            return sid, "remove", queue
        case RotaPause(seat_id=sid) | DeferPause(seat_id=sid):
            return sid, "pause", ""
        case RotaUnpause(seat_id=sid):
            return sid, "unpause", ""
        case _:
            assert_never(action)
