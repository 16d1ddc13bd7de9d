"""The FastAGI request's `agi_*` environment block, read line by line (pure): res_agi's header
order tells a real header from a line forged inside a caller-controlled value."""

from __future__ import annotations

import re

_HEADER_NAME = re.compile(r"agi_[A-Za-z0-9_]+")


class RequestDropped(Exception):
    """The connection is refused before a request exists (`reason` is logged)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# The order res_agi's setup_env() writes the environment in (FastAGI adds the two agi_network
# lines first), then agi_arg_1..N and a blank line. Values the caller controls (caller ID number
# and name, DNID, RDNIS) may hold any byte, line breaks included: the order tells a real header
# from a line inside such a value.
ENV_ORDER = (
    "agi_network",
    "agi_network_script",
    "agi_request",
    "agi_channel",
    "agi_language",
    "agi_type",
    "agi_uniqueid",
    "agi_version",
    "agi_callerid",
    "agi_calleridname",
    "agi_callingpres",
    "agi_callingani2",
    "agi_callington",
    "agi_callingtns",
    "agi_dnid",
    "agi_rdnis",
    "agi_context",
    "agi_extension",
    "agi_priority",
    "agi_enhanced",
    "agi_accountcode",
    "agi_threadid",
)
_POS = {name: i for i, name in enumerate(ENV_ORDER)}
_LAST_FIXED = _POS["agi_threadid"]
CALLER_CONTROLLED = frozenset({"agi_callerid", "agi_calleridname", "agi_dnid", "agi_rdnis"})
_ARG = re.compile(r"agi_arg_[1-9][0-9]*")


class AgiEnvReader:
    """The `agi_*` block, line by line (pure). Inside a caller-controlled value, a line that is
    no header, an unknown header, and a blank line before the fixed block is complete belong to
    the value. A header that comes out of res_agi's order shows that the headers read since the
    last caller value were forged inside it: they are folded back into that value."""

    def __init__(self) -> None:
        self._fields: list[tuple[str, list[str]]] = []
        self._pos = -1

    def _complete(self) -> bool:
        names = {name for name, _ in self._fields}
        return all(n in names for n in ENV_ORDER[2 : _LAST_FIXED + 1])

    def feed(self, line: str) -> bool:
        """Take one line (without its line end); True once the block has ended."""
        fields = self._fields
        name, sep, value = line.partition(":")
        in_value = bool(fields) and fields[-1][0] in CALLER_CONTROLLED
        if not line:
            if not fields:
                raise RequestDropped("no_agi_request")
            if self._complete() or not any(n in CALLER_CONTROLLED for n, _ in fields):
                return True
            fields[-1][1].append(line)
            return False
        if not sep or _HEADER_NAME.fullmatch(name) is None:
            if in_value:
                fields[-1][1].append(line)
                return False
            raise RequestDropped("bad_header")
        value = value.removeprefix(" ")
        pos = _POS.get(name)
        if pos is None and _ARG.fullmatch(name) is None:
            if in_value:  # an unknown header inside a caller value is part of the value
                fields[-1][1].append(line)
            else:
                fields.append((name, [value]))
            return False
        if pos is None:  # agi_arg_N: after the fixed block
            pos = _LAST_FIXED + 1
        if pos > self._pos:
            fields.append((name, [value]))
            self._pos = pos
            return False
        # Out of order: find where the forged run began (right after a caller value).
        for k in range(1, len(fields)):
            owner_name = fields[k - 1][0]
            if (
                owner_name in CALLER_CONTROLLED
                and _POS[owner_name] < pos
                and all(_POS.get(n, _LAST_FIXED + 1) >= pos for n, _ in fields[k:])
            ):
                owner = fields[k - 1][1]
                for forged, lines in fields[k:]:
                    owner.append(f"{forged}: {lines[0]}")
                    owner.extend(lines[1:])
                del fields[k:]
                fields.append((name, [value]))
                self._pos = pos
                return False
        if in_value:
            fields[-1][1].append(line)
        # else: a repeat Asterisk never sends; the first one stands
        return False

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, lines in self._fields:
            out.setdefault(name, "\n".join(lines))
        return out
