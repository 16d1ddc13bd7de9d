"""Listen-in as the supervisor page asks for it (`SpyControl` over `SpyService`: start, stop,
switch mode), its errors sorted into the `ctid.core.errors` categories."""

from __future__ import annotations

from dataclasses import dataclass

from ctid.calls.spy import SpyService
from ctid.calls.spy_types import (
    BadSpyModeError,
    NotSupervisorError,
    SeatNotOnCallError,
    SpyMode,
    SpyRequestFailedError,
    SpySessionEndedError,
    SpyView,
    UnknownSpySessionError,
    UnsafeSpyTargetError,
)
from ctid.core.actor import Actor
from ctid.core.errors import (
    CtidError,
    RecordMissingError,
    RequestRefusedError,
    StateConflictError,
)


@dataclass(frozen=True, slots=True)
class ListenInStarted:
    seat_id: str
    mode: SpyMode
    detail: str = ""
    session_id: str = ""
    """Names this listen-in for `stop`/`switch` (e.g. the supervisor leg's channel or call id)."""


def _spy_error(exc: CtidError) -> CtidError:
    if isinstance(exc, SeatNotOnCallError | SpyRequestFailedError):
        return StateConflictError(str(exc))
    if isinstance(exc, UnknownSpySessionError | SpySessionEndedError):
        return RecordMissingError(str(exc))
    if isinstance(exc, NotSupervisorError | BadSpyModeError | UnsafeSpyTargetError):
        return RequestRefusedError(str(exc))
    return exc


def _spy_started(s: SpyView) -> ListenInStarted:
    return ListenInStarted(
        s.seat_id,
        s.mode,
        f"your phone rings to {s.mode} to {s.seat_id} (call {s.call_id})",
        str(s.session_id),
    )


def _spy_session_id(session_id: str) -> int:
    if not session_id.isdigit() or len(session_id) > 18:
        raise RecordMissingError(f"no spy session {session_id[:40]!r}")
    return int(session_id)


@dataclass
class SpyControl:
    """`SpyPort` over `SpyService`; the web's session ids are the service's, as text."""

    service: SpyService

    async def spy(self, supervisor: Actor, seat_id: str, mode: SpyMode) -> ListenInStarted:
        try:
            return _spy_started(await self.service.start(supervisor.employee_id, seat_id, mode))
        except CtidError as exc:
            raise _spy_error(exc) from exc

    async def stop(self, supervisor: Actor, session_id: str) -> None:
        sid = _spy_session_id(session_id)
        known = self.service.session(sid)
        if known is not None and known.state in ("stopped", "failed"):
            raise RecordMissingError(f"spy session {sid} has already ended")
        try:
            await self.service.stop(sid, supervisor.employee_id)
        except CtidError as exc:
            raise _spy_error(exc) from exc

    async def switch(self, supervisor: Actor, session_id: str, mode: SpyMode) -> ListenInStarted:
        sid = _spy_session_id(session_id)
        try:
            return _spy_started(await self.service.switch(sid, mode, supervisor.employee_id))
        except CtidError as exc:
            raise _spy_error(exc) from exc
