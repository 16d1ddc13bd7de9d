"""Languages: gettext catalogs (Babel) for pages, mails and CSV headers, locale negotiation and
locale-aware formatting of dates, times and numbers. Catalogs live in `ctid/locale/`."""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_time, format_timedelta
from babel.numbers import format_decimal, format_percent

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
"""`<locale>/LC_MESSAGES/<area>.po`: one file per area (desk, wallboard, incidents, …)."""
DOMAIN: Final = "ctid"
SUPPORTED: Final = ("zh_CN", "en")
"""Every language ctid speaks; the first is the fallback when nothing else decides."""


def normalise(tag: str | None) -> str | None:
    """`zh-CN`, `zh_cn`, `zh-Hans`, `zh` → `zh_CN`; `en-US` → `en`; anything else → None."""
    if not tag:
        return None
    try:
        loc = Locale.parse(tag.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    if loc.language == "zh":
        return "zh_CN"
    if loc.language == "en":
        return "en"
    return None


def _accept_language(header: str) -> list[str]:
    """The tags of an `Accept-Language` header, best first (q=0 means "not this one")."""
    weighted: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag and q > 0:
            weighted.append((-q, i, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate(*, choice: str | None, accept_language: str | None, default: str) -> str:
    """A user's own choice, else the browser's `Accept-Language`, else the site default."""
    own = normalise(choice)
    if own:
        return own
    for tag in _accept_language(accept_language or ""):
        found = normalise(tag)
        if found:
            return found
    return normalise(default) or SUPPORTED[0]


def merged_catalog(locale: str) -> Catalog:
    """Every `*.po` of `locale` merged into one catalog (one file per area of the product, so
    people translating different pages never edit the same file). English is the source language
    and has no catalog."""
    from babel.messages.catalog import Catalog  # only a checkout (no .mo) reads the .po files
    from babel.messages.pofile import read_po

    merged = Catalog(locale=locale, domain=DOMAIN)
    for po in sorted((LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh, locale=locale, domain=DOMAIN):
                if message.id and message.string and not message.fuzzy:
                    merged.add(message.id, message.string, context=message.context)
    return merged


class _LazyCatalog(gettext.NullTranslations):
    """`locale`'s catalog, read on the first word asked for: compiling a checkout's `.po` files
    costs ~50 ms of CPU, which `ctid run` need not spend before it is ready."""

    def __init__(self, locale: str) -> None:
        super().__init__()
        self._locale = locale
        self._loaded: gettext.NullTranslations | None = None

    def _catalog(self) -> gettext.NullTranslations:
        if self._loaded is None:
            self._loaded = _load_translations(self._locale)
        return self._loaded

    def gettext(self, message: str) -> str:
        return self._catalog().gettext(message)

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return self._catalog().ngettext(msgid1, msgid2, n)

    def pgettext(self, context: str, message: str) -> str:
        return self._catalog().pgettext(context, message)

    def npgettext(self, context: str, msgid1: str, msgid2: str, n: int) -> str:
        return self._catalog().npgettext(context, msgid1, msgid2, n)


@cache
def _translations(locale: str) -> gettext.NullTranslations:
    return _LazyCatalog(locale)


def load_catalogs() -> None:
    """Read every supported catalog now: `ctid run` calls this in a worker thread once ready, so
    the first translated word a live call needs (a seat paused for missed calls, say) does not
    hold the loop while a catalog is read."""
    for locale in SUPPORTED:
        catalog = _translations(locale)
        if isinstance(catalog, _LazyCatalog):
            catalog._catalog()
        # Babel reads a locale's data (zone names, unit patterns, ~20,000 objects) on the first
        # format: read it here too, so that `ctid run` can freeze it with the rest (below).
        t = translator(locale)
        at = datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))
        _ = (t.when(at), t.day(at.date()), t.clock(at), t.duration(90), t.percent(0.5))


def _load_translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalog of `locale`: the wheel carries `ctid.mo` (built from the `.po`
    files); a checkout compiles them in memory, so there is no build step to forget."""
    mo = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.mo"
    if mo.is_file():
        with mo.open("rb") as fh:
            return gettext.GNUTranslations(fh)
    catalog = merged_catalog(locale)
    if not len(catalog):
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo

    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


@dataclass(frozen=True, slots=True)
class Translator:
    """One locale's words and formats; made per request (web) or per recipient (mail)."""

    locale: str
    timezone: str = "Asia/Shanghai"
    _t: gettext.NullTranslations = field(
        repr=False, compare=False, default_factory=gettext.NullTranslations
    )

    def gettext(self, message: str, /, **values: object) -> str:
        """`message` in this locale; `{name}` placeholders are filled from `values`."""
        text = self._t.gettext(message)
        return text.format(**values) if values else text

    _ = gettext

    def ngettext(self, singular: str, plural: str, n: int, /, **values: object) -> str:
        text = self._t.ngettext(singular, plural, n)
        return text.format(n=n, **values)

    def pgettext(self, context: str, message: str, /) -> str:
        """A word whose translation depends on where it stands (e.g. a status vs a verb)."""
        return self._t.pgettext(context, message)

    # -- formats -------------------------------------------------------------------------------

    def when(self, value: datetime, fmt: str = "medium") -> str:
        return _when(value, fmt, self.timezone, self.locale)

    def day(self, value: date, fmt: str = "medium") -> str:
        return format_date(value, fmt, locale=_babel(self.locale))

    def clock(self, value: time | datetime, fmt: str = "short") -> str:
        return format_time(value, fmt, tzinfo=_zone(self.timezone), locale=_babel(self.locale))

    def duration(self, seconds: float) -> str:
        return format_timedelta(
            timedelta(seconds=seconds), threshold=1.0, format="short", locale=_babel(self.locale)
        )

    def number(self, value: float | int) -> str:
        return format_decimal(value, locale=_babel(self.locale))

    def percent(self, ratio: float, digits: int = 1) -> str:
        return format_percent(ratio, format=f"#,##0.{'0' * digits}%", locale=_babel(self.locale))

    def words(self, messages: Iterable[str]) -> Mapping[str, str]:
        """msgid → translation for the strings a page's script needs (sent as JSON)."""
        return {m: self._t.gettext(m) for m in messages}


@cache
def _zone(name: str) -> tzinfo:
    return ZoneInfo(name)


@lru_cache(maxsize=2048)
def _when(value: datetime, fmt: str, timezone: str, locale: str) -> str:
    """A date and time in words, remembered: the incident list draws the same open incidents'
    dates on every page load (two a row; Babel takes ~25 µs a date, the cache ~0.3 µs). Kept
    small: each entry is two objects the collector's full passes walk."""
    return format_datetime(value, fmt, tzinfo=_zone(timezone), locale=_babel(locale))


@cache
def _babel(locale: str) -> Locale:
    # Babel parses a locale given as text on every call (half of a date's formatting time).
    return Locale.parse(locale)


def translator(locale: str, timezone: str = "Asia/Shanghai") -> Translator:
    loc = normalise(locale) or SUPPORTED[0]
    return Translator(loc, timezone, _translations(loc))


def excel_csv(text: str) -> bytes:
    """CSV text as UTF-8 with a byte-order mark: Excel opens it with the right encoding."""
    return "\ufeff".encode() + text.encode("utf-8")


def N_(message: str) -> str:  # gettext convention: "mark now, translate later"
    """Marks a string for extraction where it is defined; it is translated where it is shown."""
    return message
