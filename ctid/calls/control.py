"""Live-call control the desk asks for (`CallControl`: hand a call to the expert queue,
click-to-call) and `OriginateWatch`, which follows OriginateResponse for click-to-call."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from ctid.calls.service import CallService
from ctid.config import Config
from ctid.core.actor import Actor
from ctid.core.errors import AmiError, CtidError, RequestRefusedError, StateConflictError
from ctid.core.events import OriginateResponded
from ctid.core.ids import CallId, SeatId

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CallMoved:
    call_id: str
    target: str
    """Where the call went (the expert seat or queue)."""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DialStarted:
    number: str
    phone: str
    """The phone that rings first (the actor's seat interface or supervisor phone)."""
    detail: str = ""


SEAT_CONTEXT = "ctid-seat"
"""The dialplan context a transfer to a named seat redirects into (exten = the seat id)."""
CALLBACK_CONTEXT = "ctid-callback"
"""The dialplan context click-to-call originates into (`contrib/asterisk/extensions.conf`)."""


class OriginateWatch:
    """Follows `OriginateResponse` on the bus, so click-to-call can tell within a moment whether
    the PBX could ring the phone at all. Responses that come before anyone waits for them are
    kept (the bus may deliver the event before the Originate's reply has been handed back)."""

    def __init__(self, keep: int = 64) -> None:
        self._keep = keep
        self._waiting: dict[str, asyncio.Future[OriginateResponded]] = {}
        self._early: OrderedDict[str, OriginateResponded] = OrderedDict()

    async def on_event(self, item: object) -> None:
        if not isinstance(item, OriginateResponded) or not item.action_id:
            return
        waiter = self._waiting.pop(item.action_id, None)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(item)
            return
        self._early[item.action_id] = item
        while len(self._early) > self._keep:
            self._early.popitem(last=False)

    async def wait(self, action_id: str, timeout_s: float) -> OriginateResponded | None:
        """The response to `action_id`, or None when none came within `timeout_s`."""
        early = self._early.pop(action_id, None)
        if early is not None:
            return early
        waiter: asyncio.Future[OriginateResponded] = asyncio.get_running_loop().create_future()
        self._waiting[action_id] = waiter
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(action_id, None)


class Originator(Protocol):
    """The PBX action click-to-call needs (`ctid.asterisk.actions.AmiPbxControl` fits)."""

    async def originate_exten(
        self, channel: str, context: str, exten: str, caller_id: str
    ) -> str: ...


class SeatPhones(Protocol):
    """The phone interface of a seat right now (`ctid.rotation.admin.RosterSeats` fits)."""

    def interface(self, seat_id: str) -> str | None: ...


@dataclass
class CallControl:
    """Hand a live call to the expert queue, and click-to-call.

    Click-to-call originates the actor's own phone (their seat's interface from the roster, else
    a supervisor's configured phone) into `exten@ctid-callback`. It waits up to `confirm_s` for
    the `OriginateResponse`: an immediate Failure (unknown or unreachable phone) is reported as
    `StateConflictError`; no answer within that time means the phone is ringing. `dial` turns a
    stored number into the digits the PBX dials (`ctid.tickets.dialing.dial_string`)."""

    cfg: Config
    calls: CallService
    pbx: Originator
    seats: SeatPhones
    dial: Callable[[str], str | None]
    originates: OriginateWatch
    confirm_s: float = 2.0

    async def transfer_to_expert(self, actor: Actor, call_id: str, seat_id: str) -> CallMoved:
        call = self.calls.tracker.call(CallId(call_id))
        if call is None or call.caller_channel is None:
            raise StateConflictError(f"call {call_id} has ended")
        if actor.role == "agent" and call.answered_by != actor.seat_id:
            raise StateConflictError(f"call {call_id} is not on your seat")
        queue = self.cfg.talk_cap.expert_queue
        # Always through the expert queue: the queue rings the free expert seats with ctid's
        # ring rules, instead of ctid picking a seat that may be busy or at lunch.
        try:
            await self.calls.transfer_to_queue(
                CallId(call_id), queue, SeatId(actor.seat_id) if actor.seat_id else None
            )
        except CtidError as exc:
            raise StateConflictError(f"the call was not transferred: {exc}") from exc
        log.info("web_call_transferred", call_id=call_id, queue=queue, seat=seat_id)
        return CallMoved(call_id, queue, f"to the {queue} queue (asked for {seat_id})")

    def _own_live_call(self, actor: Actor, call_id: str) -> None:
        call = self.calls.tracker.call(CallId(call_id))
        if call is None or call.caller_channel is None:
            raise StateConflictError("this call has ended")
        if actor.role == "agent" and call.answered_by != actor.seat_id:
            raise StateConflictError("this call is not on your seat")

    async def hang_up(self, actor: Actor, call_id: str) -> None:
        """End the live call (its caller's channel)."""
        self._own_live_call(actor, call_id)
        try:
            await self.calls.hang_up_call(CallId(call_id), f"hung up by {actor.employee_id}")
        except CtidError as exc:
            raise StateConflictError(f"the call was not hung up: {exc}") from exc
        log.info("web_call_hung_up", call_id=call_id, by=actor.employee_id)

    async def transfer_to_seat(self, actor: Actor, call_id: str, seat_id: str) -> CallMoved:
        """Blind-transfer the live call to a named seat that is free and not paused."""
        self._own_live_call(actor, call_id)
        if self.cfg.seat(seat_id) is None:
            raise RequestRefusedError("no such seat")
        if seat_id == actor.seat_id:
            raise RequestRefusedError("the call is already on your seat")
        target = self.calls.tracker.seat(SeatId(seat_id))
        if target.activity != "idle" or target.paused or not target.available:
            raise StateConflictError(
                f"{seat_id} cannot take the call now (it is busy, paused or logged out)"
            )
        try:
            await self.calls.redirect_call(
                CallId(call_id), SEAT_CONTEXT, seat_id, f"transfer by {actor.employee_id}"
            )
        except CtidError as exc:
            raise StateConflictError(f"the call was not transferred: {exc}") from exc
        log.info("web_call_transferred", call_id=call_id, seat=seat_id, by=actor.employee_id)
        return CallMoved(call_id, seat_id, f"to {seat_id}")

    def _phone(self, actor: Actor) -> str | None:
        if actor.seat_id:
            interface = self.seats.interface(actor.seat_id)
            if interface is not None:
                return interface
        sup = next((s for s in self.cfg.supervisors if s.employee_id == actor.employee_id), None)
        return sup.phone if sup is not None else None

    async def click_to_call(self, actor: Actor, number: str) -> DialStarted:
        phone = self._phone(actor)
        if phone is None:
            raise RequestRefusedError("you have no phone to ring: no seat and no supervisor phone")
        digits = self.dial(number)
        if digits is None:
            raise RequestRefusedError(f"{number[:40]!r} is not a number the PBX can dial")
        try:
            action_id = await self.pbx.originate_exten(
                channel=phone,
                context=CALLBACK_CONTEXT,
                exten=digits,
                caller_id=f'"Call back {digits}" <{digits}>',
            )
        except AmiError as exc:
            raise StateConflictError(f"the PBX did not take the call: {exc}") from exc
        log.info("click_to_call", phone=phone, exten=digits, by=actor.employee_id)
        response = await self.originates.wait(action_id, self.confirm_s) if action_id else None
        if response is not None and response.response.lower() != "success":
            log.warning("click_to_call_failed", phone=phone, reason=response.reason)
            raise StateConflictError(
                f"the PBX could not ring {phone} (OriginateResponse {response.response}, "
                f"reason {response.reason})"
            )
        return DialStarted(number, phone, f"ringing {phone}, then dialling {digits}")
