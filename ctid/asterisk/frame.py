"""One AMI frame (a block of `Name: value` lines ended by a blank line), as parsed off the wire.

Only `ctid.asterisk` sees frames; everything past `translate` sees typed events.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TypeVar, overload

_T = TypeVar("_T")
_EVENT = "Event: "


class Frame(Mapping[str, str]):
    """The headers of one AMI frame. First occurrence wins for lookups; repeats are kept in order.

    AMI repeats some headers on purpose (`ChanVariable`, `Variable`), so `all(name)` returns every
    value while `frame[name]` returns the first, which is what Asterisk's own parser does.

    A frame read off the wire keeps its raw text and splits it into headers only when something
    asks for a header other than `Event`: most of Asterisk's events are ones ctid ignores, and
    their name is all that is ever read. The first such question is answered by finding that one
    line in the text (ctid drops most `VarSet`s on their `Variable` alone); the second splits the
    whole frame, once.
    """

    __slots__ = ("_chunk", "_event", "_first", "_pairs", "_peeked")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._chunk: str | None = None
        self._event: str | None = None
        self._peeked = False
        self._set(pairs)

    @classmethod
    def of(cls, **headers: str) -> Frame:
        return cls(list(headers.items()))

    @classmethod
    def from_chunk(cls, chunk: str, event: str | None = None) -> Frame:
        """A frame from its raw text (lines joined by CRLF, without the closing blank line);
        `event`: its `Event:` line's value when the reader has read it already."""
        self = cls.__new__(cls)
        self._chunk = chunk
        self._first = None  # type: ignore[assignment]
        self._pairs = None
        self._peeked = False
        if event is None and chunk.startswith(_EVENT):
            end = chunk.find("\r\n")
            event = chunk[len(_EVENT) : end if end >= 0 else None]
        self._event = event
        return self

    def _set(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs: list[tuple[str, str]] | None = pairs
        first: dict[str, str] = {}
        for name, value in pairs:
            if name not in first:
                first[name] = value
        self._first = first

    def _headers(self) -> dict[str, str]:
        first = self._first
        if first is None:
            assert self._chunk is not None
            first = _split_unique(self._chunk)
            if first is None:
                self._set(parse_lines(self._chunk))
                return self._first
            self._first = first
        return first

    def _pair_list(self) -> list[tuple[str, str]]:
        first = self._headers()
        if self._pairs is None:
            # Split by `_split_unique`: no name repeats, so the dict holds every line in order.
            self._pairs = list(first.items())
        return self._pairs

    def _peek(self, name: str) -> str | None:
        """The first `name` header, found in the raw text without splitting the rest; raises
        LookupError when only a full split can tell (an odd line that merely starts with `name:`).
        """
        chunk = self._chunk
        assert chunk is not None
        key = name + ":"
        if chunk.startswith(key):
            start = 0
        else:
            start = chunk.find("\r\n" + key)
            if start < 0:
                # A header called `name` can only be a line that starts with `name:`.
                return None
            start += 2
        end = chunk.find("\r\n", start)
        line = chunk[start:] if end < 0 else chunk[start:end]
        # The same rule as `parse_lines`: `Name: value`, else `Name:value`.
        found, sep, value = line.partition(": ")
        if not sep:
            found, _, value = line.partition(":")
        if found != name:
            raise LookupError(name)
        return value

    def pick(self, keys: HeaderKeys) -> dict[str, str]:
        """`Event` and the headers of `keys` (`header_keys(names)`) that the frame has, first
        occurrence winning: found in the raw text in one pass, which costs far less than
        splitting every line when a reader wants a few headers of a long frame. Falls back to
        `headers()` (every header) for a frame built from pairs, or one with a `Name:value` line
        for a wanted name, whose meaning only the full split settles. Do not change the dict."""
        chunk = self._chunk
        if chunk is None or self._first is not None:
            return self._headers()
        out = {"Event": self._event} if self._event is not None else {}
        for name, space, value in keys.findall(chunk):
            if not space:
                return self._headers()
            if name not in out:
                out[name] = value
        return out

    def headers(self) -> dict[str, str]:
        """Every header, first occurrence winning, as one dict split once: for code that reads
        many headers of one frame (`translate`). The dict is the frame's own: do not change it."""
        return self._headers()

    def __getitem__(self, name: str) -> str:
        return self._headers()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers())

    def __len__(self) -> int:
        return len(self._headers())

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    @overload
    def get(self, name: str, default: _T) -> str | _T: ...

    def get(self, name: str, default: object = None) -> object:
        # Mapping.get goes through __getitem__ and a KeyError; this is on the hot path.
        first = self._first
        if first is not None:
            return first.get(name, default)
        if not self._peeked:
            # The first question about a frame off the wire: often the only one (see the class).
            self._peeked = True
            try:
                value = self._peek(name)
            except LookupError:
                pass
            else:
                return default if value is None else value
        return self._headers().get(name, default)

    def all(self, name: str) -> list[str]:
        return [v for n, v in self._pair_list() if n == name]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(self._pair_list())

    @property
    def event(self) -> str | None:
        if self._chunk is not None and self._first is None:
            return self._event
        return self._headers().get("Event")

    @property
    def response(self) -> str | None:
        if self._event is not None:
            return None  # an event frame, by its first line
        return self._headers().get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def __repr__(self) -> str:
        return f"Frame({self.pairs!r})"


HeaderKeys = re.Pattern[str]
"""What `Frame.pick` searches for (`header_keys`)."""


def header_keys(names: tuple[str, ...]) -> HeaderKeys:
    """The lines of the headers `names` after the first line, for `Frame.pick`: name, the space
    after its colon (missing: a `Name:value` line) and the value up to the line's CRLF."""
    if "Event" in names:
        raise ValueError("Event is the first line: `Frame.pick` always returns it")
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(f"\r\n({alternatives}):( ?)([^\r]*(?:\r(?!\n)[^\r]*)*)")


def _split_unique(chunk: str) -> dict[str, str] | None:
    """The headers as one dict built in C, when every line is `Name: value` and no name repeats
    (nearly every frame Asterisk sends); None otherwise, and `parse_lines` decides."""
    lines = chunk.split("\r\n")
    try:
        # A line without ": " splits into one piece, which dict() refuses with ValueError.
        first = dict([line.split(": ", 1) for line in lines])
    except ValueError:
        return None
    return first if len(first) == len(lines) else None


def parse_lines(chunk: str) -> list[tuple[str, str]]:
    """`Name: value` lines → pairs. Asterisk writes empty values both as `Name: ` and `Name:`; a
    stray blank or colon-less line (old `--END COMMAND--`) carries no header and is skipped."""
    pairs: list[tuple[str, str]] = []
    add = pairs.append
    for line in chunk.split("\r\n"):
        name, sep, value = line.partition(": ")
        if sep:
            add((name, value))
        elif ":" in line:
            name, _, value = line.partition(":")
            add((name, value))
    return pairs
