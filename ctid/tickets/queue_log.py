"""Asterisk's queue_log as a second witness: a pure parser of its lines, an assembler that turns
them into one `LoggedCall` per queue call, and a follower that reads the file from a kept
position (inode + offset) across rotation and truncation."""

from __future__ import annotations

import itertools
import os
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Literal, Protocol

import structlog

log = structlog.get_logger(__name__)

# Field meanings, from apps/app_queue.c (Asterisk 22) — `data` is everything after `event`:
#   ENTERQUEUE       url|callerid|position[|callername]
#   CONNECT          holdtime|bridged-uniqueid|ringtime
#   COMPLETECALLER / COMPLETEAGENT   holdtime|calltime|origposition
#   ABANDON / EXITWITHTIMEOUT / EXITEMPTY   position|origposition|waittime
#   EXITWITHKEY      key|position|origposition|waittime
#   RINGNOANSWER / RINGCANCELED      ms (how long that member rang)
#   BLINDTRANSFER / TRANSFER         exten|context|holdtime|calltime|origposition
#   ATTENDEDTRANSFER (BRIDGE|id | APP|app | LINK|chan|chan)|holdtime|calltime|origposition
#   QUEUESTART       written by main/logger.c when Asterisk (re)starts: every call then open is
#                    gone, and Uniqueids count again from `.0`.
CALL_EVENTS = frozenset(
    {
        "ENTERQUEUE",
        "CONNECT",
        "COMPLETECALLER",
        "COMPLETEAGENT",
        "ABANDON",
        "EXITWITHTIMEOUT",
        "EXITEMPTY",
        "EXITWITHKEY",
        "RINGNOANSWER",
        "RINGCANCELED",
        "TRANSFER",
        "BLINDTRANSFER",
        "ATTENDEDTRANSFER",
    }
)
MEMBER_EVENTS = frozenset(
    {"PAUSE", "UNPAUSE", "PAUSEALL", "UNPAUSEALL", "ADDMEMBER", "REMOVEMEMBER", "PENALTY"}
)
_ENDS_LEG = frozenset(
    {
        "COMPLETECALLER",
        "COMPLETEAGENT",
        "ABANDON",
        "EXITWITHTIMEOUT",
        "EXITEMPTY",
        "EXITWITHKEY",
        "TRANSFER",
        "BLINDTRANSFER",
        "ATTENDEDTRANSFER",
    }
)
MAX_LINE_BYTES = 8192
"""A longer line is not something Asterisk wrote: skipped (and the reader re-syncs at the next
newline), so a hostile or corrupt file costs one line, never the reader."""

LoggedOutcome = Literal[
    "answered", "abandoned_in_queue", "unanswered_timeout", "exit_with_key", "lost_by_pbx"
]


class QueueLogError(ValueError):
    """A line that is not a queue_log line."""


@dataclass(frozen=True, slots=True)
class QueueLogLine:
    epoch: int
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]


def parse_line(raw: bytes | str) -> QueueLogLine:
    """One line (without or with its newline). Raises `QueueLogError` for anything else."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_LINE_BYTES:
            raise QueueLogError(f"line of {len(raw)} bytes")
        text = raw.decode("utf-8", errors="replace")
    else:
        text = raw
    text = text.rstrip("\r\n")
    parts = text.split("|")
    if len(parts) < 5:
        raise QueueLogError("fewer than 5 fields")
    epoch_s, callid, queue, agent, event = parts[:5]
    if not epoch_s.isascii() or not epoch_s.isdigit() or len(epoch_s) > 12:
        raise QueueLogError("time is not an epoch")
    if not event or not event.isascii() or not event.replace("_", "").isalnum():
        raise QueueLogError("bad event name")
    return QueueLogLine(int(epoch_s), callid, queue, agent, event.upper(), tuple(parts[5:]))


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    v = value.strip()
    if v.lstrip("-").isdigit() and len(v) < 19:
        return int(v)
    return None


@dataclass(frozen=True, slots=True)
class LoggedRing:
    """A member rang and did not take the call (RINGNOANSWER: it ran out or was cut;
    RINGCANCELED: the caller left or another member answered)."""

    agent: str
    queue: str
    ended_at: int
    ring_ms: int | None
    outcome: Literal["no_answer", "caller_left"]


@dataclass(frozen=True, slots=True)
class LoggedLeg:
    """One member's connected leg of the call."""

    agent: str
    queue: str
    connected_at: int
    hold_s: int | None
    ring_s: int | None
    ended_at: int | None = None
    talk_s: int | None = None
    end_event: str | None = None


@dataclass(frozen=True, slots=True)
class LoggedCall:
    """Everything the log says about one call. `key` is unique across PBX restarts
    (`callid@epoch-of-first-ENTERQUEUE`)."""

    key: str
    callid: str
    queue: str
    caller_number: str
    entered_at: int
    ended_at: int
    outcome: LoggedOutcome
    wait_s: int | None
    legs: tuple[LoggedLeg, ...]
    rings: tuple[LoggedRing, ...]
    transfer_target: str | None = None
    """BLINDTRANSFER/ATTENDEDTRANSFER destination (an extension or a bridge), if any."""

    @property
    def answered(self) -> LoggedLeg | None:
        return self.legs[0] if self.legs else None

    @property
    def transferred_to(self) -> str | None:
        """The member who took over the call (redirect into another queue), if any."""
        return self.legs[1].agent if len(self.legs) > 1 else None


@dataclass
class _Open:
    callid: str
    queue: str
    caller: str
    entered_at: int
    offset: int
    open_legs: int = 1
    legs: list[LoggedLeg] = field(default_factory=list)
    rings: list[LoggedRing] = field(default_factory=list)
    end_event: str | None = None
    ended_at: int | None = None
    wait_s: int | None = None
    transfer_target: str | None = None


class CallAssembler:
    """Feed it lines in file order; it returns each call when its last queue leg ends, and at a
    QUEUESTART closes every call still open as `lost_by_pbx` (no talk time is invented)."""

    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}
        self._newest = 0

    @property
    def open_calls(self) -> int:
        return len(self._open)

    def oldest_open_offset(self) -> int | None:
        return min((c.offset for c in self._open.values()), default=None)

    def rebase_open(self, offset: int) -> None:
        for c in self._open.values():
            c.offset = offset

    def close_stale(self, older_than_s: int) -> list[LoggedCall]:
        if not self._open:
            return []
        cutoff = self._newest - older_than_s
        stale = [k for k, c in self._open.items() if c.entered_at < cutoff]
        out = []
        for k in stale:
            c = self._open.pop(k)
            log.warning("queue_log_call_never_ended", callid=c.callid, entered_at=c.entered_at)
            out.append(self._close(c, c.ended_at or c.entered_at, lost=True))
        return out

    def feed(self, line: QueueLogLine, offset: int = 0) -> list[LoggedCall]:
        self._newest = max(self._newest, line.epoch)
        ev = line.event
        if ev == "QUEUESTART":
            lost = [self._close(c, line.epoch, lost=True) for c in self._open.values()]
            self._open.clear()
            return lost
        if ev not in CALL_EVENTS or line.callid in ("NONE", "MANAGER", ""):
            return []
        d = line.data
        call = self._open.get(line.callid)
        if ev == "ENTERQUEUE":
            if call is None:
                self._open[line.callid] = _Open(
                    line.callid, line.queue, _enterqueue_caller(d), line.epoch, offset
                )
            else:  # the caller was sent on into another queue (a transfer by redirect)
                call.open_legs += 1
            return []
        if call is None:  # its ENTERQUEUE is before the part of the file we read
            log.debug("queue_log_orphan_line", callid=line.callid, queue_event=ev)
            return []
        match ev:
            case "CONNECT":
                call.legs.append(
                    LoggedLeg(
                        agent=line.agent,
                        queue=line.queue,
                        connected_at=line.epoch,
                        hold_s=_int(d[0] if d else None),
                        ring_s=_int(d[2] if len(d) > 2 else None),
                    )
                )
            case "RINGNOANSWER" | "RINGCANCELED":
                call.rings.append(
                    LoggedRing(
                        agent=line.agent,
                        queue=line.queue,
                        ended_at=line.epoch,
                        ring_ms=_int(d[0] if d else None),
                        outcome="no_answer" if ev == "RINGNOANSWER" else "caller_left",
                    )
                )
            case _:
                self._end_leg(call, line)
        if ev in _ENDS_LEG:
            call.open_legs -= 1
            if call.open_legs <= 0:
                del self._open[line.callid]
                return [self._close(call, line.epoch, lost=False)]
        return []

    def flush_lost(self, at: int) -> list[LoggedCall]:
        """Close every open call as lost (used by tests and by callers that know the PBX died)."""
        lost = [self._close(c, at, lost=True) for c in self._open.values()]
        self._open.clear()
        return lost

    @staticmethod
    def _end_leg(call: _Open, line: QueueLogLine) -> None:
        ev, d = line.event, line.data
        if ev in ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY"):
            call.end_event = call.end_event or ev
            call.wait_s = _int(d[-1] if d else None)
            call.ended_at = line.epoch
            return
        # COMPLETE*/TRANSFER: close this member's leg (the last open leg of that agent).
        talk = _int(d[-2]) if len(d) >= 3 else None
        for i in range(len(call.legs) - 1, -1, -1):
            leg = call.legs[i]
            if leg.agent == line.agent and leg.queue == line.queue and leg.end_event is None:
                call.legs[i] = LoggedLeg(
                    leg.agent,
                    leg.queue,
                    leg.connected_at,
                    leg.hold_s,
                    leg.ring_s,
                    ended_at=line.epoch,
                    talk_s=talk,
                    end_event=ev,
                )
                break
        if ev in ("TRANSFER", "BLINDTRANSFER"):
            call.transfer_target = "@".join(d[:2]) if len(d) >= 2 else None
        elif ev == "ATTENDEDTRANSFER":
            call.transfer_target = "|".join(d[:-3]) or None
        call.ended_at = line.epoch

    @staticmethod
    def _close(call: _Open, at: int, *, lost: bool) -> LoggedCall:
        outcome: LoggedOutcome
        legs = tuple(call.legs)
        if lost:
            outcome = "lost_by_pbx"
            # A leg with no end line never had its end written: leave its talk time unknown.
        elif legs:
            outcome = "answered"
        elif call.end_event == "ABANDON":
            outcome = "abandoned_in_queue"
        elif call.end_event == "EXITWITHKEY":
            outcome = "exit_with_key"
        else:
            outcome = "unanswered_timeout"
        return LoggedCall(
            key=f"{call.callid}@{call.entered_at}",
            callid=call.callid,
            queue=call.queue,
            caller_number=call.caller,
            entered_at=call.entered_at,
            ended_at=at if lost else (call.ended_at or at),
            outcome=outcome,
            wait_s=call.wait_s,
            legs=legs,
            rings=tuple(call.rings),
            transfer_target=call.transfer_target,
        )


def _enterqueue_caller(d: tuple[str, ...]) -> str:
    """The caller number of ENTERQUEUE `url|callerid|position[|name]`. The number is the
    caller's to choose and may hold `|`: take it as everything between the url and the last
    all-digit field (the position)."""
    if len(d) < 3:
        return d[1] if len(d) > 1 else ""
    for i in range(len(d) - 1, 1, -1):
        if d[i].isascii() and d[i].isdigit():
            return "|".join(d[1:i])
    return d[1]


def assemble(lines: Iterable[QueueLogLine]) -> Iterator[LoggedCall]:
    """Every call the lines finish (a convenience for whole files)."""
    asm = CallAssembler()
    for line in lines:
        yield from asm.feed(line)


# --------------------------------------------------------------------------- the file


@dataclass(frozen=True, slots=True)
class LogPosition:
    """Where reading resumes: the file's inode and a byte offset at a line start."""

    inode: int
    offset: int


class PositionStore(Protocol):
    async def load(self, path: str) -> LogPosition | None: ...

    async def save(self, path: str, pos: LogPosition) -> None: ...


@dataclass
class ReadResult:
    calls: list[LoggedCall]
    position: LogPosition
    """Where the next read starts: the first line of the oldest call still open (so a restart of
    ctid re-reads it whole), else the end of the last whole line."""
    lines: int
    bad_lines: int
    restarted: str | None
    """Why reading started at 0: 'rotated' (new inode), 'truncated', or None."""


STALE_OPEN_S = 6 * 3600
"""A call open this long behind the newest line lost its end lines (a hand-edited or damaged
log): it is closed as lost rather than pinning the read position for ever."""


def read_calls(path: str, pos: LogPosition | None, *, since_epoch: int = 0) -> ReadResult:
    """Every call the lines after `pos` finish, at once (tests and small files; the reconcilers
    stream with `QueueLogReader`)."""
    reader = QueueLogReader(path, pos, since_epoch=since_epoch)
    calls = list(reader.calls())
    assert reader.position is not None
    return ReadResult(calls, reader.position, reader.lines, reader.bad_lines, reader.restarted)


class QueueLogReader:
    """Streams the calls of the whole lines after `pos` as they finish, so memory holds only the
    calls still open. A new inode (rotation: the rest of the old file is read first if it is
    still beside it, e.g. `queue_log.1`) or a file shorter than the offset (truncation) starts
    again at 0. A partial last line is left for the next read. Bad lines are logged and skipped.
    Once `calls()` is exhausted, `position`, `lines`, `bad_lines` and `restarted` are set."""

    def __init__(self, path: str, pos: LogPosition | None, *, since_epoch: int = 0) -> None:
        self.path = path
        self._pos = pos
        self._since = since_epoch
        self.lines = 0
        self.bad_lines = 0
        self.restarted: str | None = None
        self.position: LogPosition | None = None
        self._stream: Iterator[LoggedCall] | None = None

    def take(self, n: int) -> list[LoggedCall]:
        """The next `n` calls at most (an empty list at the end); may run in a worker thread."""
        if self._stream is None:
            self._stream = self.calls()
        return list(itertools.islice(self._stream, n))

    def calls(self) -> Iterator[LoggedCall]:
        asm = CallAssembler()
        pos = self._pos
        with open(self.path, "rb") as fh:
            st = os.fstat(fh.fileno())
            offset = 0
            if pos is not None:
                if pos.inode != st.st_ino:
                    self.restarted = "rotated"
                    old = _rotated_sibling(self.path, pos.inode)
                    if old is not None:
                        with open(old, "rb") as ofh:
                            yield from self._feed(ofh, pos.offset, asm, old)
                        # Calls still open continue in the new file; their offsets point into
                        # the old one, which the position cannot name: they restart at 0.
                        asm.rebase_open(0)
                elif st.st_size < pos.offset:
                    self.restarted = "truncated"
                else:
                    offset = pos.offset
            if self.restarted:
                log.info("queue_log_restarted", path=self.path, why=self.restarted)
            end = yield from self._feed(fh, offset, asm, self.path)
        yield from asm.close_stale(STALE_OPEN_S)
        safe = asm.oldest_open_offset()
        self.position = LogPosition(st.st_ino, end if safe is None else safe)

    def _feed(
        self, fh: BinaryIO, offset: int, asm: CallAssembler, path: str
    ) -> Generator[LoggedCall, None, int]:
        """Feed whole lines from `offset` on, yielding the calls they finish; returns the end
        offset (the start of the first line not read)."""
        fh.seek(offset)
        at = offset
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                break
            start = at
            if not raw.endswith(b"\n"):
                if len(raw) <= MAX_LINE_BYTES:
                    break  # a line Asterisk is still writing: read it next time
                while raw and not raw.endswith(b"\n"):  # over-long: skip to its end
                    at += len(raw)
                    raw = fh.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    at = start
                    break
                at += len(raw)
                self.bad_lines += 1
                log.warning("queue_log_bad_line", path=path, offset=start, error="line too long")
                continue
            at += len(raw)
            if not raw.strip():
                continue
            try:
                line = parse_line(raw)
            except QueueLogError as exc:
                self.bad_lines += 1
                log.warning("queue_log_bad_line", path=path, offset=start, error=str(exc))
                continue
            self.lines += 1
            if line.epoch < self._since and line.event != "QUEUESTART":
                continue
            yield from asm.feed(line, start)
        return at


def _rotated_sibling(path: str, inode: int) -> str | None:
    folder, base = os.path.split(os.path.abspath(path))
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    for name in names:
        if name.startswith(base) and name != base:
            full = os.path.join(folder, name)
            try:
                if os.stat(full).st_ino == inode:
                    return full
            except OSError:
                continue
    return None
