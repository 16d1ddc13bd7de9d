"""The hotline IVR: the pure routing decision (menu choice + desk state → queue) and the menu dialog
run over any channel that can play prompts and collect digits (ctid's FastAGI session)."""

# Never a dead end: silence replays the menu then takes the default route, invalid keys are
# announced and replayed (max `ivr.max_invalid`) then take the default route, and the routing never
# sends a caller to a tier with nobody on duty. A prompt the PBX cannot play does not stop the menu
# (the channel collects the keys silently); only a hangup ends it. After hours the caller is never
# queued. Digits are untrusted: only 0-9 * # are looked at.

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import structlog

from ctid.config import Config, IvrOptionConfig, QueueConfig

log = structlog.get_logger(__name__)

_DIGITS = re.compile(r"^[0-9*#]*$")
INCIDENT_DIGITS_MAX = 16


class DeskView(Protocol):
    """What the IVR needs to know about the desk right now (the rotation's desk state)."""

    @property
    def mode(self) -> Literal["closed", "open", "lunch"]: ...

    @property
    def tiers_on_duty(self) -> frozenset[str]: ...

    @property
    def overflow_expert_to_ordinary(self) -> bool: ...

    def seat_on_duty(self, seat_id: str) -> bool: ...


class IvrChannel(Protocol):
    """The few telephony verbs the dialog uses (ctid's `AgiSession` has them)."""

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None: ...

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None: ...

    async def set_variable(self, name: str, value: str) -> None: ...


@dataclass(frozen=True)
class IncidentStatus:
    status: str
    owner_seat: str | None


class KnownIncident(Protocol):
    """What the IVR tells a caller about their incident (`IncidentStatus`, or the tickets' own)."""

    @property
    def status(self) -> str: ...

    @property
    def owner_seat(self) -> str | None: ...


StatusLookup = Callable[[str], Awaitable[KnownIncident | None]]
CallbackSink = Callable[[str, str], Awaitable[None]]
"""(caller number, reason) → records a callback request."""


@dataclass(frozen=True)
class Route:
    """What the dialplan gets as channel variables."""

    action: Literal["queue", "seat", "hangup"]
    queue: str
    choice: str  # the digit, or "default" / "closed" / "callback" / "hangup"
    request_type: str
    dial: str = ""  # with action "seat": the seat's interface, tried before the queue
    overflow: bool = False  # lunch overflow: an expert call goes to ordinary seats


def _queue_serves_on_duty(queue: QueueConfig, desk: DeskView) -> bool:
    return any(tier in desk.tiers_on_duty for tier in queue.tiers)


def queue_for(cfg: Config, wanted: str, desk: DeskView) -> tuple[str, bool]:
    """The queue to use for `wanted` now: itself when a tier it serves is on duty; at lunch with
    overflow, a queue of the on-duty tiers (flagged); else any queue with somebody on duty; the
    default queue as the last resort (the PBX's fail-open)."""
    queue = cfg.queue(wanted)
    if queue is not None and _queue_serves_on_duty(queue, desk):
        return queue.name, False
    ordered = sorted(cfg.queues, key=lambda q: (q.name != cfg.ivr.default_queue, q.name))
    for candidate in ordered:
        if set(candidate.tiers) <= desk.tiers_on_duty and desk.tiers_on_duty:
            return candidate.name, True
    for candidate in ordered:
        if _queue_serves_on_duty(candidate, desk):
            return candidate.name, True
    return cfg.ivr.default_queue, False


def default_route(cfg: Config, desk: DeskView, choice: str = "default") -> Route:
    queue, overflow = queue_for(cfg, cfg.ivr.default_queue, desk)
    return Route("queue", queue, choice, "fault", overflow=overflow)


def route_for_option(cfg: Config, option: IvrOptionConfig, desk: DeskView) -> Route:
    queue, overflow = queue_for(cfg, option.queue or cfg.ivr.default_queue, desk)
    return Route("queue", queue, option.digit, option.request_type, overflow=overflow)


def route_for_incident(
    cfg: Config, option: IvrOptionConfig, found: KnownIncident, desk: DeskView
) -> Route:
    """A caller asking about an incident goes to its owner's seat when that seat is on duty."""
    owner = cfg.seat(found.owner_seat) if found.owner_seat else None
    if owner is not None and found.status not in ("closed",) and desk.seat_on_duty(owner.id):
        tier_queue = next(
            (q.name for q in cfg.queues if set(q.tiers) == {owner.tier}), cfg.ivr.default_queue
        )
        queue, overflow = queue_for(cfg, tier_queue, desk)
        return Route("seat", queue, option.digit, option.request_type, owner.interface, overflow)
    return route_for_option(cfg, option, desk)


@dataclass(frozen=True)
class IvrResult:
    route: Route
    hung_up: bool = False
    incident: str = ""


async def _set_route(ch: IvrChannel, route: Route) -> None:
    # CTID_QUEUE last: it is what the fail-open default already holds, so a hangup midway still
    # leaves the dialplan with a queue.
    await ch.set_variable("CTID_ROUTE", route.action)
    await ch.set_variable("CTID_IVR", route.choice)
    await ch.set_variable("CTID_CATEGORY", route.request_type)
    if route.action == "seat":
        await ch.set_variable("CTID_DIAL", route.dial)
    await ch.set_variable("CTID_QUEUE", route.queue)


async def _after_hours(
    ch: IvrChannel, cfg: Config, caller_number: str, callbacks: CallbackSink
) -> IvrResult:
    """Closed: the decision (no queue, the caller is told and offered a callback) is taken and
    handed to the dialplan first, so neither a missing prompt file nor a hangup midway can send
    the caller to a queue of seats paused `closed`."""
    p = cfg.ivr.prompts
    route = Route("hangup", cfg.ivr.default_queue, "closed", "fault")
    await _set_route(ch, route)
    if await ch.stream_file(p.closed) is None:
        return IvrResult(route, hung_up=True)
    answer: str | None = ""
    for _offer in range(cfg.ivr.silence_replays + 1):
        answer = await ch.get_data(p.callback_offer, int(cfg.ivr.digit_timeout_s * 1000), 1)
        if answer != "":
            break
    if answer is None:
        return IvrResult(route, hung_up=True)
    if answer == "1":
        await callbacks(caller_number, "after_hours")
        route = Route("hangup", cfg.ivr.default_queue, "callback", "fault")
        await ch.set_variable("CTID_IVR", route.choice)
        await ch.stream_file(p.callback_recorded)
    await ch.stream_file(p.goodbye)
    return IvrResult(route)


async def run_ivr(
    ch: IvrChannel,
    cfg: Config,
    desk: DeskView,
    *,
    caller_number: str,
    lookup: StatusLookup,
    callbacks: CallbackSink,
) -> IvrResult:
    """Run the menu for one caller and leave the decision in channel variables."""
    p = cfg.ivr.prompts
    timeout_ms = int(cfg.ivr.digit_timeout_s * 1000)
    gone = IvrResult(Route("hangup", cfg.ivr.default_queue, "hangup", "fault"), hung_up=True)

    if desk.mode == "closed":
        return await _after_hours(ch, cfg, caller_number, callbacks)

    options = {o.digit: o for o in cfg.ivr.options}
    silences = invalids = 0
    # Callers who know the menu press during the welcome: take that key (barge-in).
    early = await ch.stream_file(p.welcome, "".join(options) + "*#")
    if early is None:
        return gone
    while True:
        if early:
            pressed: str | None = early
            early = ""
        else:
            pressed = await ch.get_data(p.menu, timeout_ms, 1)  # plays (and replays) the menu
        if pressed is None:
            return gone
        pressed = pressed[:1] if _DIGITS.match(pressed) else "?"
        if pressed == "":
            silences += 1
            if silences > cfg.ivr.silence_replays:
                route = default_route(cfg, desk)
                break
            continue
        option = options.get(pressed)
        if option is None:
            invalids += 1
            if await ch.stream_file(p.invalid) is None:
                return gone
            if invalids > cfg.ivr.max_invalid:
                route = default_route(cfg, desk)
                break
            continue
        if option.action == "queue":
            route = route_for_option(cfg, option, desk)
            break
        if option.action == "callback":
            await callbacks(caller_number, "missed")
            await ch.stream_file(p.callback_recorded)
            route = Route("hangup", cfg.ivr.default_queue, "callback", option.request_type)
            await ch.stream_file(p.goodbye)
            break
        # status of an existing incident
        number = await ch.get_data(p.enter_incident, timeout_ms * 2, INCIDENT_DIGITS_MAX)
        if number is None:
            return gone
        number = number if _DIGITS.match(number) else ""
        found = await lookup(number) if number else None
        if found is None:
            await ch.stream_file(p.incident_unknown)
            route = route_for_option(cfg, option, desk)
        else:
            await ch.stream_file(p.incident_status_prefix + found.status)
            route = route_for_incident(cfg, option, found, desk)
        if route.overflow:
            await ch.stream_file(p.lunch_overflow)
        await _set_route(ch, route)
        return IvrResult(route, incident=number)
    if route.overflow:
        await ch.stream_file(p.lunch_overflow)
    await _set_route(ch, route)
    return IvrResult(route)
