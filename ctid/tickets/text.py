"""Untrusted text (caller ID names, CSV cells, agent input) turned into plain, length-limited
strings: control characters removed, whitespace trimmed, too-long values refused or cut."""

from __future__ import annotations

import re

from ctid.tickets.errors import InvalidInputError

# C0/C1 controls, DEL, and the Unicode line/paragraph separators and bidi overrides that can
# disguise text in a browser or a mail client.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"[\r\n\t]+")
_SPACES = re.compile(r"[ \u00a0\u3000]+")


def one_line(value: object) -> str:
    """`value` as a single trimmed line (tabs and line breaks become one space)."""
    text = "" if value is None else str(value)
    text = _LINE_BREAKS.sub(" ", text)
    text = _CONTROL.sub("", text)
    return _SPACES.sub(" ", text).strip()


def block(value: object) -> str:
    """`value` as multi-line plain text: CRLF/CR become LF, other controls are removed."""
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return _CONTROL.sub("", text).strip()


def line_field(field: str, value: object, max_len: int, *, required: bool = False) -> str | None:
    """A one-line field from a person: None when empty (unless `required`), refused when long."""
    text = one_line(value)
    if not text:
        if required:
            raise InvalidInputError(f"{field} is required")
        return None
    if len(text) > max_len:
        raise InvalidInputError(f"{field} is longer than {max_len} characters")
    return text


def block_field(field: str, value: object, max_len: int, *, required: bool = False) -> str | None:
    """A multi-line field from a person (descriptions, resolutions)."""
    text = block(value)
    if not text:
        if required:
            raise InvalidInputError(f"{field} is required")
        return None
    if len(text) > max_len:
        raise InvalidInputError(f"{field} is longer than {max_len} characters")
    return text


def clip(value: object, max_len: int) -> str | None:
    """One line cut to `max_len`: for data from the PBX, which must never make a call fail."""
    text = one_line(value)
    return text[:max_len] or None


_EMAIL = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+\.[^@\s,;<>\"'.]+$")
MAX_EMAIL = 254


def email_field(field: str, value: object) -> str | None:
    """An email address or None; only the plain `local@domain.tld` form (no display names, no
    lists), so it is safe to put in a `To:` header."""
    text = one_line(value)
    if not text:
        return None
    if len(text) > MAX_EMAIL or not _EMAIL.match(text):
        raise InvalidInputError(f"{field} {text[:60]!r} is not an email address")
    return text
