"""Incident numbers: `PREFIX-YYYYMMDD-NNNN`, and what a caller or agent may type for one."""

from __future__ import annotations

import re

from ctid.tickets.text import one_line


class IncidentNumbers:
    """Parses incident numbers with the site's prefix (`incidents.number_prefix`)."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._number_re = re.compile(rf"^{re.escape(prefix)}-(\d{{8}})-(\d{{4,6}})$")

    def parse(self, entered: str) -> str | None:
        """`INC-20261122-0001` (any case) or the digits `202611220001` → the incident number."""
        text = one_line(entered).upper()
        if self._number_re.match(text):
            return text
        if re.fullmatch(r"\d{12,14}", text):
            return f"{self._prefix}-{text[:8]}-{int(text[8:]):04d}"
        return None
