"""Phone-number normalisation, so a caller matches however the PBX or a CSV presents the number
(`+86 138-0013-8000`, `008613800138000` → `+8613800138000`; extensions as `ext:NNNN`); text that
is no plausible number yields None."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

_EXT_SPLIT = re.compile(r"\s*(?:ext\.?|extension|x|#|转|分机)\s*(\d{1,6})\s*$", re.IGNORECASE)
_ALLOWED = re.compile(r"^[+\d ().\-/]*$")


@dataclass(frozen=True)
class PhonePlan:
    """The site's numbering context (from `[site]` in the config)."""

    country_code: str = "86"
    area_code: str = "10"
    internal_extension_digits: int = 4

    @property
    def region(self) -> str:
        return phonenumbers.region_code_for_country_code(int(self.country_code)) or "ZZ"


@dataclass(frozen=True)
class NormalizedPhone:
    number: str  # E.164 (`+8613800138000`) or `ext:NNNN` for an internal extension
    extension: str = ""  # an extension behind a switchboard number (`010-12345678 ext 123`)


def normalize_phone(raw: str, plan: PhonePlan = PhonePlan()) -> NormalizedPhone | None:
    """Normalise `raw`; None when it is not a usable phone number. A short local landline gets
    the site's area code; a short internal number is kept as the extension `ext:NNNN`."""
    text = (raw or "").strip()
    if not text or len(text) > 40:
        return None
    extension = ""
    m = _EXT_SPLIT.search(text)
    if m:
        extension = m.group(1)
        text = text[: m.start()].strip()
    if not _ALLOWED.match(text):
        return None
    digits = re.sub(r"\D", "", text)
    if not digits:
        return None
    if not text.startswith("+") and len(digits) <= plan.internal_extension_digits:
        return NormalizedPhone(f"ext:{digits}", extension)
    candidates: list[str] = []
    if text.startswith("+"):
        candidates.append("+" + digits)
    elif digits.startswith("00"):
        candidates.append("+" + digits[2:])
    else:
        candidates.append(digits)
        if digits.startswith(plan.country_code) and len(digits) > 11:
            candidates.append("+" + digits)
        if plan.area_code and not digits.startswith("0") and len(digits) in (7, 8):
            candidates.append("0" + plan.area_code + digits)
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, plan.region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            return NormalizedPhone(e164, extension)
    # A number phonenumbers does not know (test ranges, odd trunks): keep its digits so the same
    # presentation still matches itself, but never invent a country.
    if 5 <= len(digits) <= 20:
        return NormalizedPhone(("+" if text.startswith("+") else "") + digits, extension)
    return None
