"""AMI wire format as Asterisk 22 writes and reads it: frame encoding, the action parser, constants.

Byte-level choices here come from the recordings in `shared/ami-transcripts` (see their README).
"""

from __future__ import annotations

from collections.abc import Iterable

BANNER = b"Asterisk Call Manager/11.0.0\r\n"

# Asterisk rejects (drops) an input line longer than its 1024-byte buffer; so do we.
MAX_LINE = 1024
# Asterisk keeps at most 128 headers per message (AST_MAX_MANHEADERS); extra ones are ignored.
MAX_HEADERS = 128

STATE_DESC = {
    0: "Down",
    1: "Rsrvd",
    2: "OffHook",
    3: "Dialing",
    4: "Ring",
    5: "Ringing",
    6: "Up",
    7: "Busy",
    8: "Dialing Offhook",
    9: "Pre-ring",
    10: "Unknown",
}
DOWN, RING, RINGING, UP = 0, 4, 5, 6

CAUSE_TEXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    27: "Destination out of order",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    127: "Interworking, unspecified",
}

# Device states as `DeviceStateChange` names them, and the numbers QueueMemberStatus uses.
DEVICE_STATUS = {
    "UNKNOWN": 0,
    "NOT_INUSE": 1,
    "INUSE": 2,
    "BUSY": 3,
    "INVALID": 4,
    "UNAVAILABLE": 5,
    "RINGING": 6,
    "RINGINUSE": 7,
    "ONHOLD": 8,
}

PRIV_CALL = "call"
PRIV_DIALPLAN = "dialplan"
PRIV_AGENT = "agent"
PRIV_SYSTEM = "system"
ALL_CLASSES = frozenset(
    {
        "system",
        "call",
        "log",
        "verbose",
        "command",
        "agent",
        "user",
        "config",
        "dtmf",
        "reporting",
        "cdr",
        "dialplan",
        "originate",
        "agi",
        "cc",
        "aoc",
        "test",
        "security",
        "message",
    }
)

Pairs = list[tuple[str, str]]


def _clean(value: str) -> str:
    # Asterisk never emits a bare CR or LF inside a value; keep the framing intact whatever we got.
    if "\r" in value or "\n" in value:
        return value.replace("\r", " ").replace("\n", " ")
    return value


def encode(pairs: Iterable[tuple[str, str]]) -> bytes:
    """One frame: `Name: value` lines, each ended by CRLF, then an empty line."""
    return ("".join(f"{k}: {_clean(v)}\r\n" for k, v in pairs) + "\r\n").encode()


def encode_event(name: str, privilege: str | None, timestamp: str | None, body: Pairs) -> bytes:
    parts = [f"Event: {name}\r\n"]
    if privilege is not None:
        parts.append(f"Privilege: {privilege},all\r\n")
    if timestamp is not None:
        parts.append(f"Timestamp: {timestamp}\r\n")
    for k, v in body:
        parts.append(f"{k}: {_clean(v)}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode()


class ActionParser:
    """Incremental parser for what a client sends: frames of header lines, ended by an empty line.

    Accepts CRLF or bare LF line ends (Asterisk's `get_input` does too), never raises on junk:
    undecodable bytes are replaced, over-long lines are dropped, lines without a colon are skipped.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._headers: Pairs = []

    def feed(self, data: bytes) -> list[Pairs]:
        self._buf += data
        frames: list[Pairs] = []
        while True:
            idx = self._buf.find(b"\n")
            if idx < 0:
                if len(self._buf) > MAX_LINE:
                    self._buf = b""  # "Dumping long line with no return"
                break
            raw = self._buf[:idx]
            self._buf = self._buf[idx + 1 :]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if len(raw) > MAX_LINE:
                continue
            line = raw.decode("utf-8", errors="replace")
            if line == "":
                if self._headers:
                    frames.append(self._headers)
                    self._headers = []
                continue
            name, sep, value = line.partition(":")
            if not sep:
                continue
            if len(self._headers) < MAX_HEADERS:
                self._headers.append((name.strip(), value.lstrip(" ")))
        return frames


def header(pairs: Pairs, name: str) -> str:
    """First value of `name` (case-insensitive, like astman_get_header), or ''."""
    low = name.lower()
    for k, v in pairs:
        if k.lower() == low:
            return v
    return ""


def headers(pairs: Pairs, name: str) -> list[str]:
    low = name.lower()
    return [v for k, v in pairs if k.lower() == low]


def is_true(value: str) -> bool:
    """Asterisk's ast_true."""
    return value.strip().lower() in {"yes", "true", "y", "t", "1", "on"}
