"""One AMI frame (a block of `Name: value` lines ended by a blank line), as parsed off the wire.

Only `ctid.asterisk` sees frames; everything past `translate` sees typed events.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar, overload

_T = TypeVar("_T")


class Frame(Mapping[str, str]):
    """The headers of one AMI frame. First occurrence wins for lookups; repeats are kept in order.

    AMI repeats some headers on purpose (`ChanVariable`, `Variable`), so `all(name)` returns every
    value while `frame[name]` returns the first, which is what Asterisk's own parser does.
    """

    __slots__ = ("_first", "_pairs")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        first: dict[str, str] = {}
        for name, value in pairs:
            if name not in first:
                first[name] = value
        self._first = first

    @classmethod
    def of(cls, **headers: str) -> Frame:
        return cls(list(headers.items()))

    def __getitem__(self, name: str) -> str:
        return self._first[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    @overload
    def get(self, name: str, default: _T) -> str | _T: ...

    def get(self, name: str, default: object = None) -> object:
        # Mapping.get goes through __getitem__ and a KeyError; this is on the hot path.
        return self._first.get(name, default)

    def all(self, name: str) -> list[str]:
        return [v for n, v in self._pairs if n == name]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    @property
    def event(self) -> str | None:
        return self._first.get("Event")

    @property
    def response(self) -> str | None:
        return self._first.get("Response")

    @property
    def action_id(self) -> str | None:
        return self._first.get("ActionID")

    def __repr__(self) -> str:
        return f"Frame({self._pairs!r})"
