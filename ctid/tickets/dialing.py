"""`dial_string`: the digits the PBX dials for a stored phone number under the site's phone plan."""

from __future__ import annotations

import re

from ctid.tickets.phones import PhonePlan, normalize_phone

_MOBILE = re.compile(r"^1[3-9]\d{9}$")


_DIGITS = re.compile(r"^\d{2,20}$")


def dial_string(number: str, plan: PhonePlan) -> str | None:
    """The digits the PBX dials for a stored number, or None when it is not callable.

    `ext:NNNN` → `NNNN`; a home-country mobile (`+8613800138000`) → `13800138000`; a home-country
    landline (`+861012345678`) → national format with the trunk prefix, `01012345678`; any other
    country → `00` + country code + number (China's international prefix). An extension behind a
    switchboard (`… ext 123`) is dropped: the agent asks the operator for it."""
    norm = normalize_phone(number, plan)
    if norm is None:
        return None
    n = norm.number
    if n.startswith("ext:"):
        digits = n.removeprefix("ext:")
    elif n.startswith("+" + plan.country_code):
        national = n.removeprefix("+" + plan.country_code)
        digits = national if _MOBILE.match(national) else "0" + national
    else:
        digits = "00" + n.removeprefix("+")
    return digits if _DIGITS.match(digits) else None
