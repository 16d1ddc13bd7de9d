"""The language layer: negotiation, formats, and catalogs that are complete and up to date."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from ctid import i18n

ROOT = Path(__file__).resolve().parent.parent


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
    assert en.number(12345.5) == "12,345.5"
    assert en.percent(0.325) == "32.5%"
    assert zh.percent(0.325) == "32.5%"


def test_excel_csv_starts_with_a_bom_and_keeps_chinese() -> None:
    data = i18n.excel_csv("姓名,电话\r\n")
    assert data.startswith(b"\xef\xbb\xbf")
    assert data[3:].decode("utf-8") == "姓名,电话\r\n"


def _po(lang: str) -> dict[str, str]:
    path = ROOT / "ctid" / "locale" / lang / "LC_MESSAGES" / "ctid.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    return {str(m.id if isinstance(m.id, str) else m.id[0]): m.string for m in catalog if m.id}


def test_catalogs_cover_every_marked_string(tmp_path: Path) -> None:
    """Extraction from today's source finds nothing the Chinese catalog lacks (run scripts/i18n
    and translate the new entries when this fails)."""
    pot = tmp_path / "ctid.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", "babel.cfg",
         "-k", "N_", "-k", "gettext", "-k", "ngettext:1,2", "-k", "pgettext:1c,2", "-k", "t",
         "--no-location", "--omit-header", "-o", str(pot), "ctid"],
        cwd=ROOT, check=True,
    )  # fmt: skip
    with pot.open("rb") as fh:
        wanted = {str(m.id if isinstance(m.id, str) else m.id[0]) for m in read_po(fh) if m.id}
    zh = _po("zh_CN")
    missing = sorted(wanted - zh.keys())
    untranslated = sorted(k for k in wanted & zh.keys() if not zh[k])
    assert not missing, f"not in zh_CN catalog (run scripts/i18n): {missing[:10]}"
    assert not untranslated, f"no Chinese yet: {untranslated[:10]}"
    assert wanted, "no string is marked for translation"


def test_translator_reads_the_catalog_and_fills_placeholders() -> None:
    zh = i18n.translator("zh_CN")
    en = i18n.translator("en")
    assert zh.gettext("Ready") == "就绪"
    assert en.gettext("Ready") == "Ready"
    assert zh.gettext("Ring {n} of {limit}", n=2, limit=3) == "第 2 声(共 3 声)"
    assert en.gettext("Ring {n} of {limit}", n=2, limit=3) == "Ring 2 of 3"
