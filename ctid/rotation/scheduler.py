"""Wall-clock triggers for the rota: an APScheduler 3 `AsyncIOScheduler`, started inside the running
loop, with one `DateTrigger` for the next transition (re-armed after each fire, so DST and
holidays come from the pure calendar) and an interval job that picks up roster edits.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol

import structlog
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ctid.rotation.calendar import CalendarError
from ctid.rotation.desk import CurrentRota
from ctid.rotation.plan import SEARCH_DAYS, Transition, day_transitions
from ctid.rotation.rota import Rota

log = structlog.get_logger(__name__)

TRANSITION_JOB = "rota_transition"
POLL_JOB = "rota_roster_poll"
MISFIRE_GRACE_S = 3600
"""A transition job up to an hour late (a suspended VM, a blocked loop) still runs; later than
that the poll job notices the mode differs and applies it."""
POLL_INTERVAL_S = 30.0


class TransitionTarget(Protocol):
    """What the jobs drive (`RotaEnforcer`)."""

    @property
    def current(self) -> CurrentRota: ...

    async def on_transition(self, at: datetime | None = None) -> object: ...

    async def poll_roster(self) -> object: ...

    def add_reload_listener(self, listener: Any) -> None: ...


def next_transition(rota: Rota, after: datetime) -> Transition:
    """The first transition strictly after `after` (aware). Raises `CalendarError` when the
    calendar has no service hours within `SEARCH_DAYS`."""
    if after.tzinfo is None:
        raise CalendarError("next_transition needs an aware datetime")
    t = after.astimezone(UTC)
    first = rota.calendar.local_date(after)
    day = first
    while (day - first).days <= SEARCH_DAYS:
        for tr in day_transitions(
            day, calendar=rota.calendar, rotation=rota.rotation, overrides=rota.overrides
        ):
            if tr.at.astimezone(UTC) > t:
                return tr
        day += timedelta(days=1)
    raise CalendarError(f"no service hours within {SEARCH_DAYS} days of {first.isoformat()}")


class RotaScheduler:
    """Owns the `AsyncIOScheduler`. `async with RotaScheduler(enforcer):` starts it inside the
    running loop and arms the next transition; leaving the block shuts it down (cancelling a
    job that is running). Jobs are coroutines (APScheduler runs plain functions in a thread)."""

    def __init__(
        self,
        target: TransitionTarget,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        misfire_grace_s: int = MISFIRE_GRACE_S,
    ) -> None:
        self._target = target
        self._poll_s = poll_interval_s
        self._grace = misfire_grace_s
        tz = target.current.rota.calendar.tz
        self.scheduler = AsyncIOScheduler(
            timezone=tz,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": misfire_grace_s,
            },
        )
        self._armed: Transition | None = None
        target.add_reload_listener(self.arm)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> RotaScheduler:
        self.arm()
        self.add_poll_job()
        self.scheduler.add_listener(self._missed, EVENT_JOB_MISSED)
        self.scheduler.start()
        log.info("rota_scheduler_started", next=self._describe())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.scheduler.running:
            # AsyncIOScheduler.shutdown is deferred with call_soon; it cancels running jobs.
            self.scheduler.shutdown(wait=False)
        log.info("rota_scheduler_stopped")

    # ------------------------------------------------------------------ jobs

    def arm(self) -> Transition | None:
        """(Re-)arm the transition job for the next transition after now; a no-op when it is
        already armed for that instant. Returns the armed transition (None if none exists)."""
        current = self._target.current
        try:
            nxt = next_transition(current.rota, current.clock.now())
        except CalendarError as exc:
            log.error("rota_no_next_transition", error=str(exc))
            self._armed = None
            return None
        job = self.scheduler.get_job(TRANSITION_JOB)
        if job is not None and self._armed == nxt:
            return nxt
        if job is not None:
            # Not `replace_existing` alone: before start() that would queue a second job.
            self.scheduler.remove_job(TRANSITION_JOB)
        self.scheduler.add_job(
            self.fire,
            trigger=DateTrigger(run_date=nxt.at, timezone=current.rota.calendar.tz),
            kwargs={"transition": nxt},
            id=TRANSITION_JOB,
            name=f"rota {nxt.kind} at {nxt.at.isoformat()}",
            replace_existing=True,
            misfire_grace_time=self._grace,
            coalesce=True,
            max_instances=1,
        )
        self._armed = nxt
        log.info("rota_transition_armed", kind=nxt.kind, at=nxt.at.isoformat(), mode=nxt.mode)
        return nxt

    def add_poll_job(self) -> None:
        self.scheduler.add_job(
            self.poll,
            trigger=IntervalTrigger(
                seconds=self._poll_s, timezone=self._target.current.rota.calendar.tz
            ),
            id=POLL_JOB,
            name="rota roster poll",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(self._poll_s)),
        )

    async def fire(self, transition: Transition) -> None:
        """The transition job: apply, then arm the next one (whatever happened)."""
        log.info("rota_transition", kind=transition.kind, at=transition.at.isoformat())
        try:
            await self._target.on_transition(transition.at)
        except Exception:  # one job run is the unit of work; the next one must still be armed
            log.exception("rota_transition_failed", kind=transition.kind)
        finally:
            self._armed = None
            self.arm()

    async def poll(self) -> None:
        """The interval job: roster edits from other processes, and a safety net that re-arms."""
        try:
            await self._target.poll_roster()
        except Exception:  # one job run is the unit of work (a database hiccup, say)
            log.exception("rota_poll_failed")
        if self.scheduler.get_job(TRANSITION_JOB) is None:
            self._armed = None
        self.arm()

    def next_transition(self) -> Transition | None:
        """The armed transition (for the wallboard and the ops page)."""
        return self._armed

    def _describe(self) -> str | None:
        return self._armed.at.isoformat() if self._armed else None

    def _missed(self, event: JobExecutionEvent) -> None:
        log.warning("rota_job_missed", job=event.job_id, scheduled=str(event.scheduled_run_time))
