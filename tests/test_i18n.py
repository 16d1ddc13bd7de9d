"""The language layer: negotiation, formats, and catalogs that are complete and up to date."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from babel.messages.pofile import read_po

from ctid import i18n, i18n_check


@pytest.mark.parametrize(
    ("choice", "header", "default", "want"),
    [
        ("en", "zh-CN,zh;q=0.9", "zh_CN", "en"),  # the user's own choice wins
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "en", "zh_CN"),
        (None, "fr-FR, en-US;q=0.8, zh;q=0.5", "zh_CN", "en"),  # first language ctid speaks
        (None, "en;q=0, zh-TW", "en", "zh_CN"),  # q=0 means "not English"
        (None, "de, fr", "zh_CN", "zh_CN"),  # nothing ctid speaks: the site default
        (None, None, "en", "en"),
        ("klingon", "garbage;;q=x", "zh_CN", "zh_CN"),
    ],
)
def test_negotiate_prefers_choice_then_browser_then_site(
    choice: str | None, header: str | None, default: str, want: str
) -> None:
    assert i18n.negotiate(choice=choice, accept_language=header, default=default) == want


def test_formats_follow_the_locale() -> None:
    at = datetime(2026, 12, 7, 1, 5, tzinfo=UTC)  # 09:05 in Shanghai
    zh = i18n.translator("zh_CN", "Asia/Shanghai")
    en = i18n.translator("en", "Asia/Shanghai")
    assert "2026年12月7日" in zh.when(at)
    assert "Dec 7, 2026" in en.when(at)
    assert zh.clock(at) == "09:05"
    # Dates are remembered per (instant, format, zone, language): the same instant in another
    # zone or language is drawn for that zone and language.
    assert en.when(at, "short") == "12/7/26, 9:05\u202fAM"
    assert i18n.translator("en", "UTC").when(at, "short") == "12/7/26, 1:05\u202fAM"
    assert zh.when(at, "short") == "2026/12/7 09:05"
    assert en.number(12345.5) == "12,345.5"
    assert en.percent(0.325) == "32.5%"
    assert zh.percent(0.325) == "32.5%"


def test_excel_csv_starts_with_a_bom_and_keeps_chinese() -> None:
    data = i18n.excel_csv("姓名,电话\r\n")
    assert data.startswith(b"\xef\xbb\xbf")
    assert data[3:].decode("utf-8") == "姓名,电话\r\n"


def test_catalogs_cover_every_marked_string() -> None:
    """Every string marked in today's source has Chinese (scripts/i18n lists what is missing)."""
    assert len(i18n_check.marked_strings()) > 10
    assert i18n_check.missing("zh_CN") == []


def test_area_catalogs_do_not_contradict_each_other() -> None:
    seen: dict[tuple[str, str | None], tuple[str, str]] = {}
    for po in sorted((i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            for m in read_po(fh, locale="zh_CN"):
                if not m.id:
                    continue
                key = (str(m.id), m.context)
                if key in seen:
                    assert seen[key][1] == m.string, f"{key} in {seen[key][0]} and {po.name}"
                seen[key] = (po.name, str(m.string))


def test_translator_reads_the_catalog_and_fills_placeholders() -> None:
    zh = i18n.translator("zh_CN")
    en = i18n.translator("en")
    assert zh.gettext("Ready") == "就绪"
    assert en.gettext("Ready") == "Ready"
    assert zh.gettext("Ring {n} of {limit}", n=2, limit=3) == "第 2 声(共 3 声)"
    assert en.gettext("Ring {n} of {limit}", n=2, limit=3) == "Ring 2 of 3"


def test_load_catalogs_reads_every_language_now_not_on_the_first_word() -> None:
    """`ctid run` calls it in a worker thread once ready: the first translated word a live call
    needs (a seat paused for missed calls) then costs the loop nothing."""
    from ctid.i18n import SUPPORTED, _LazyCatalog, _translations, load_catalogs

    load_catalogs()
    for locale in SUPPORTED:
        catalog = _translations(locale)
        assert isinstance(catalog, _LazyCatalog) and catalog._loaded is not None
