"""AMI wire layer: the pure frame parser, action encoding and the per-link asyncio protocol
(ctid's own replacement for panoramisk's AMIProtocol; `ami.AmiConnection` supervises it)."""

from __future__ import annotations

import asyncio
import codecs
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from ctid.asterisk.frame import Frame
from ctid.core.errors import (
    AmiActionError,
    AmiDisconnectedError,
    AmiError,
    UnsafeValueError,
)

log = structlog.get_logger(__name__)

BANNER_PREFIX = "Asterisk Call Manager/"
MAX_FRAME_CHARS = 1 << 20
"""An unterminated frame longer than this (decoded characters, ~1 MiB) drops the link."""

LIST_ACTIONS = frozenset({"coreshowchannels", "queuestatus", "queuesummary"})
"""Actions whose answer is an event list even before the response says `EventList: start`."""

_TERM = "\r\n\r\n"
_EVENT = "Event: "
_EVENT_LEN = len(_EVENT)

EventFilter = Mapping[str, str]
"""The events a reader wants: name → a text a frame of that name must contain to be built (empty:
every frame of that name, as `"" in text` always holds). Any other event frame is only counted."""


class FrameTooLargeError(AmiError):
    """The peer sent more than `max_frame_chars` without ending the frame."""


class AmiFrameParser:
    """Bytes off the AMI socket in, whole `Frame`s out. Pure and synchronous.

    Decodes incrementally, so a UTF-8 character split across TCP reads survives and bad bytes
    become U+FFFD. Skips the banner line (which Asterisk ends with a single CRLF), empty frames
    and header lines without a colon.
    """

    __slots__ = (
        "_decode",
        "_max",
        "_newlines",
        "_pending",
        "_pending_len",
        "_repaired",
        "_tail",
        "_want_banner",
        "ignored",
        "version",
    )

    def __init__(self, max_frame_chars: int = MAX_FRAME_CHARS) -> None:
        self._decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        # Only looks (translate=False): which line ends a read holds, in one pass in C.
        self._newlines = io.IncrementalNewlineDecoder(None, translate=False)
        self._max = max_frame_chars
        # An unterminated frame is kept as pieces (joined once its terminator arrives) so that a
        # big frame trickling in small reads costs linear, not quadratic, time.
        self._pending: list[str] = []
        self._pending_len = 0
        self._tail = ""  # the last 3 characters received, to find a terminator split across reads
        self._want_banner = True
        self._repaired = 0
        self.version: str | None = None
        """The protocol version from the banner (`11.0.0`), once seen."""
        self.ignored = 0
        """Event frames left unbuilt because their name was not wanted (see `feed`)."""

    def feed(self, data: bytes, wanted: EventFilter | None = None) -> list[Frame]:
        """The whole frames completed by `data`. With `wanted`, an event frame it does not want
        (by name, then by content) is never built, only counted in `ignored`."""
        text = self._decode(data)
        if not text:
            return []
        if self._bare_lf(text):
            text = self._crlf(text)
        if self._want_banner:
            text = self._banner(text)
            if not text:
                return []
        if _TERM not in text and _TERM not in self._tail + text[:3]:
            self._pending.append(text)
            self._pending_len += len(text)
            self._tail = (self._tail + text)[-3:]
            if self._pending_len > self._max:
                raise FrameTooLargeError(
                    f"no end of frame after {self._pending_len} characters (limit {self._max})"
                )
            return []
        if self._pending:
            self._pending.append(text)
            text = "".join(self._pending)
            self._pending = []
        chunks = text.split(_TERM)
        rest = chunks.pop()
        if rest:
            if len(rest) > self._max:
                raise FrameTooLargeError(
                    f"no end of frame after {len(rest)} characters (limit {self._max})"
                )
            self._pending.append(rest)
        self._pending_len = len(rest)
        self._tail = text[-3:]
        frames: list[Frame] = []
        self.ignored += _parse_into(frames, chunks, wanted)
        return frames

    def _bare_lf(self, text: str) -> bool:
        """Whether `text` has a LF without a CR before it (a LF that completes a CR at the end of
        the previous read counts too: `_crlf` sorts that out). One pass, where comparing the
        counts of LF and CRLF took two, each slower."""
        seen = self._newlines
        seen.reset()
        seen.decode(text)
        kinds = seen.newlines  # None, "\r", "\n", "\r\n", or a tuple of those
        return kinds == "\n" or (type(kinds) is tuple and "\n" in kinds)

    def _crlf(self, text: str) -> str:
        """Line ends other than CRLF (a bare LF, or mixed): make every line end CRLF, so a frame
        ended by a blank line of any style is its own frame and never swallows the next one.
        A LF that completes a CR left at the end of the previous read is already a CRLF."""
        head = ""
        if text[0] == "\n" and (self._tail or "".join(self._pending)[-1:]).endswith("\r"):
            head, text = "\n", text[1:]
            if not self._bare_lf(text):
                return head + text
        self._repaired += 1
        if self._repaired == 1 or self._repaired % 1000 == 0:
            log.warning("ami_line_endings_repaired", times=self._repaired)
        return head + text.replace("\r\n", "\n").replace("\n", "\r\n")

    def _banner(self, text: str) -> str:
        """Strip `Asterisk Call Manager/x.y.z\\r\\n` (no blank line follows it) from the start."""
        if self._pending:
            self._pending.append(text)
            text = "".join(self._pending)
            self._pending = []
            self._pending_len = 0
        if text.startswith(BANNER_PREFIX):
            end = text.find("\r\n")
            if end < 0:
                if len(text) > self._max:
                    raise FrameTooLargeError(f"banner line longer than {self._max} characters")
                self._pending = [text]
                self._pending_len = len(text)
                return ""
            self.version = text[len(BANNER_PREFIX) : end].strip()
            self._want_banner = False
            return text[end + 2 :]
        if BANNER_PREFIX.startswith(text):
            # Too short to tell yet (one byte per read): wait for more.
            self._pending = [text]
            self._pending_len = len(text)
            return ""
        self._want_banner = False
        return text


def _parse_into(frames: list[Frame], chunks: list[str], wanted: EventFilter | None) -> int:
    """Append the frames of `chunks`; events `wanted` refuses are only counted (returned)."""
    ignored = 0
    for chunk in chunks:
        # This runs for every frame on the wire: kept inline, and a frame dropped by name costs
        # its first line only. Headers are split lazily (see `Frame.from_chunk`).
        if not chunk.startswith(_EVENT):
            chunk = chunk.strip("\r\n")
            if not chunk or ":" not in chunk:
                continue  # nothing but stray blank lines (or a line without a colon): no frame
            if wanted is None or not chunk.startswith(_EVENT):
                frames.append(Frame.from_chunk(chunk))
                continue
        elif wanted is None:
            frames.append(Frame.from_chunk(chunk.strip("\r\n")))
            continue
        end = chunk.find("\r\n")
        name = chunk[_EVENT_LEN:end] if end >= 0 else chunk[_EVENT_LEN:].rstrip("\r\n")
        needle = wanted.get(name)
        if needle is None or needle not in chunk:
            ignored += 1
            continue
        frames.append(Frame.from_chunk(chunk.strip("\r\n"), name))
    return ignored


def encode_action(name: str, action_id: str, fields: Sequence[tuple[str, str]]) -> bytes:
    """Serialise one action; refuses CR/LF anywhere so no value can smuggle in another action."""
    parts = [f"Action: {_safe_name(name, 'action name')}\r\nActionID: {action_id}\r\n"]
    for key, value in fields:
        _safe_name(key, "header name")
        if key.lower() in ("action", "actionid"):
            raise UnsafeValueError(f"{name}: header {key!r} is set by ctid, not by the caller")
        if "\r" in value or "\n" in value:
            raise UnsafeValueError(f"{name}: value of {key} contains CR or LF: {value!r}")
        parts.append(f"{key}: {value}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")


def normalise_fields(
    fields: Mapping[str, str] | Sequence[tuple[str, str]],
) -> list[tuple[str, str]]:
    pairs = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    for pair in pairs:
        if (
            not isinstance(pair, tuple)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or not isinstance(pair[1], str)
        ):
            raise UnsafeValueError(f"AMI action fields must be (str, str) pairs, got {pair!r}")
    return pairs


def _safe_name(name: str, what: str) -> str:
    if not name or "\r" in name or "\n" in name or ":" in name:
        raise UnsafeValueError(f"AMI {what} must be non-empty without CR, LF or ':': {name!r}")
    return name


@dataclass(eq=False)
class PendingAction:
    """One action on the wire, waiting for its response (and, for lists, its items)."""

    name: str
    future: asyncio.Future[tuple[Frame, list[Frame]]]
    listing: bool
    response: Frame | None = None
    items: list[Frame] = field(default_factory=list)


@dataclass
class LinkStats:
    """Counters shared by every link of one connection (read by `AmiConnection.health`)."""

    last_event_at: float | None = None
    events_total: int = 0
    """Every event received, including the ones dropped by name before they were built."""
    events_per_s: float = 0.0
    window_start: float | None = None
    window_events: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    """`Response: Error` answers by action name."""


class AmiProtocol(asyncio.Protocol):
    """One AMI TCP link: frames in (`on_frame` for events), ActionID-correlated actions out.

    Everything pending fails with `AmiDisconnectedError` when the link drops; nothing is replayed.
    """

    def __init__(
        self,
        on_frame: Callable[[Frame], None],
        stats: LinkStats | None = None,
        *,
        max_frame_chars: int = MAX_FRAME_CHARS,
        events: EventFilter | None = None,
        on_read: Callable[[], None] | None = None,
        after_read: Callable[[], None] | None = None,
    ) -> None:
        """`events`: the only events `on_frame` wants (None: all). The others are counted
        but never built, except while an action is in flight (its list items and end-of-list
        events must reach it whatever their names). `on_read` is called once per socket read
        that carries frames, before the first of them (to read a clock once per read), and
        `after_read` after the last (the daemon dispatches the read's events there)."""
        self._on_frame = on_frame
        self._on_read = on_read
        self._after_read = after_read
        self._events = events
        self._stats = stats if stats is not None else LinkStats()
        self._parser = AmiFrameParser(max_frame_chars)
        self._pending: dict[str, PendingAction] = {}
        # List actions given up on (timeout or cancelled caller): their late items are dropped
        # rather than leaking into the event stream as if Asterisk had sent them unprompted.
        self._abandoned: dict[str, None] = {}
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self.lost: asyncio.Future[str] = self._loop.create_future()
        """Resolves with a reason once the link is gone."""
        self._close_reason: str | None = None

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._close_reason is not None:
            return
        pending = self._pending
        abandoned = self._abandoned
        parser = self._parser
        ignored = parser.ignored
        try:
            frames = parser.feed(data, None if pending or abandoned else self._events)
        except FrameTooLargeError as exc:
            log.error("ami_frame_too_large", reason=str(exc))
            self.abort(f"frame too large: {exc}")
            return
        events = parser.ignored - ignored
        if not frames:
            if events:
                self._count(events)
            return
        on_frame = self._on_frame
        if self._on_read is not None:
            self._on_read()
        for frame in frames:
            if pending or abandoned:
                aid = frame.action_id
                if aid is not None and self._route(aid, frame):
                    continue
            name = frame.event
            if name is None:
                log.warning(
                    "ami_unmatched_response",
                    action_id=frame.action_id,
                    response=frame.response,
                    message=frame.get("Message"),
                )
                continue
            events += 1
            try:
                on_frame(frame)
            except Exception:
                # One bad event must not cost the rest of this read or the link.
                log.exception(
                    "ami_handler_failed",
                    ami_event=name,
                    uniqueid=frame.get("Uniqueid"),
                    action_id=frame.action_id,
                )
        if events:
            self._count(events)
        if self._after_read is not None:
            try:
                self._after_read()
            except Exception:  # the bus logs its handlers' errors; this is a last resort
                log.exception("ami_after_read_failed")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._close_reason is None:
            self._close_reason = f"connection lost: {exc}" if exc else "closed by Asterisk"
        self._transport = None
        self._fail_all(self._close_reason)
        if not self.lost.done():
            self.lost.set_result(self._close_reason)

    # ------------------------------------------------------------------ actions

    @property
    def version(self) -> str | None:
        return self._parser.version

    @property
    def is_open(self) -> bool:
        return (
            self._close_reason is None
            and self._transport is not None
            and not self._transport.is_closing()
        )

    def send(
        self, name: str, action_id: str, fields: Sequence[tuple[str, str]], *, listing: bool
    ) -> PendingAction:
        """Write one action and register it under `action_id`. Raises before writing anything."""
        data = encode_action(name, action_id, fields)
        transport = self._transport
        if self._close_reason is not None or transport is None or transport.is_closing():
            raise AmiDisconnectedError(f"{name}: AMI link is down")
        if action_id in self._pending:
            raise AmiError(f"{name}: ActionID {action_id} is already in flight")
        pending = PendingAction(
            name,
            self._loop.create_future(),
            listing or name.lower() in LIST_ACTIONS,
        )
        self._pending[action_id] = pending
        transport.write(data)
        return pending

    def forget(self, action_id: str) -> None:
        """The caller stopped waiting (timeout, cancellation): drop the action's late answer."""
        pending = self._pending.pop(action_id, None)
        if pending is None:
            return
        if not pending.future.done():
            pending.future.cancel()
        if pending.listing or pending.response is not None:
            self._abandoned[action_id] = None
            while len(self._abandoned) > 256:
                del self._abandoned[next(iter(self._abandoned))]

    def abort(self, reason: str) -> None:
        """Drop the link now: pending actions fail and `lost` resolves with `reason` at once."""
        if self._close_reason is None:
            self._close_reason = reason
        transport = self._transport
        if transport is not None:
            transport.abort()  # connection_lost follows on a later loop turn
        self._fail_all(self._close_reason)
        if not self.lost.done():
            self.lost.set_result(self._close_reason)

    # ------------------------------------------------------------------ internals

    def _route(self, aid: str, frame: Frame) -> bool:
        """Give `frame` to the action with ActionID `aid`; False if it is an ordinary event."""
        pending = self._pending.get(aid)
        is_event = frame.event is not None
        if pending is None:
            if aid in self._abandoned:
                # Swallow the late answer of an action nobody waits for any more, up to the
                # end of its list (or a response that opens none).
                if (is_event and _ends_list(frame)) or (
                    not is_event and frame.get("EventList", "").lower() != "start"
                ):
                    del self._abandoned[aid]
                return True
            return False
        if not is_event:
            if pending.response is not None:
                return True  # a duplicate response: nothing left to decide
            if frame.response == "Error":
                del self._pending[aid]
                # Every refusal is an error line with the action and Asterisk's own words, even
                # when the caller handles the exception (e.g. `QueueRemove` → `Member not dynamic`).
                refused = self._stats.refused
                refused[pending.name] = refused.get(pending.name, 0) + 1
                log.error(
                    "ami_action_refused",
                    action=pending.name,
                    message=frame.get("Message", ""),
                    action_id=aid,
                )
                if not pending.future.done():
                    pending.future.set_exception(
                        AmiActionError(pending.name, frame.get("Message", ""))
                    )
                return True
            pending.response = frame
            if pending.listing or frame.get("EventList", "").lower() == "start":
                pending.listing = True
                return True
            del self._pending[aid]
            if not pending.future.done():
                pending.future.set_result((frame, []))
            return True
        if not pending.listing:
            # e.g. OriginateResponse reuses the Originate's ActionID: it is an ordinary event.
            return False
        if _ends_list(frame):
            del self._pending[aid]
            response = pending.response if pending.response is not None else frame
            if not pending.future.done():
                pending.future.set_result((response, pending.items))
            return True
        pending.items.append(frame)
        return True

    def _fail_all(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for action in pending.values():
            if not action.future.done():
                action.future.set_exception(
                    AmiDisconnectedError(f"{action.name}: AMI link lost ({reason})")
                )

    def _count(self, events: int) -> None:
        stats = self._stats
        now = self._loop.time()
        stats.last_event_at = now
        stats.events_total += events
        if stats.window_start is None:
            # The first read only starts the clock: a rate needs a span to divide by.
            stats.window_start = now
            return
        stats.window_events += events
        span = now - stats.window_start
        if span >= 1.0:
            stats.events_per_s = stats.window_events / span
            stats.window_start = now
            stats.window_events = 0


def _ends_list(frame: Frame) -> bool:
    if frame.get("EventList", "").lower() == "complete":
        return True
    name = frame.event
    return name is not None and name.endswith("Complete")
