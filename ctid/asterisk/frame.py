"""One AMI frame (a block of `Name: value` lines ended by a blank line), as parsed off the wire.

Only `ctid.asterisk` sees frames; everything past `translate` sees typed events.
"""

from __future__ import annotations

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
    their name is all that is ever read.
    """

    __slots__ = ("_chunk", "_event", "_first", "_pairs")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._chunk: str | None = None
        self._event: str | None = None
        self._set(pairs)

    @classmethod
    def of(cls, **headers: str) -> Frame:
        return cls(list(headers.items()))

    @classmethod
    def from_chunk(cls, chunk: str) -> Frame:
        """A frame from its raw text (lines joined by CRLF, without the closing blank line)."""
        self = cls.__new__(cls)
        self._chunk = chunk
        self._first = None  # type: ignore[assignment]
        self._pairs = None  # type: ignore[assignment]
        event = None
        if chunk.startswith(_EVENT):
            end = chunk.find("\r\n")
            event = chunk[len(_EVENT) : end if end >= 0 else None]
        self._event = event
        return self

    def _set(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        first: dict[str, str] = {}
        for name, value in pairs:
            if name not in first:
                first[name] = value
        self._first = first

    def _headers(self) -> dict[str, str]:
        if self._first is None:
            assert self._chunk is not None
            self._set(parse_lines(self._chunk))
        return self._first

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
        return self._headers().get(name, default)

    def all(self, name: str) -> list[str]:
        self._headers()
        return [v for n, v in self._pairs if n == name]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        self._headers()
        return list(self._pairs)

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
        return self._headers().get("ActionID")

    def __repr__(self) -> str:
        return f"Frame({self.pairs!r})"


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
