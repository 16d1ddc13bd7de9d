"""Phone normalisation: one person, however the number is written; hostile text is refused."""

from __future__ import annotations

import pytest

from ctid.tickets.phones import PhonePlan, normalize_phone

SAME_MOBILE = [
    "13800138000",
    "+86 138-0013-8000",
    "008613800138000",
    "8613800138000",
    "86 13800138000",
    "+86 (138) 0013 8000",
    " 138 0013 8000 ",
]


@pytest.mark.parametrize("raw", SAME_MOBILE)
def test_one_mobile_many_spellings(raw: str) -> None:
    got = normalize_phone(raw)
    assert got is not None
    assert got.number == "+8613800138000"


@pytest.mark.parametrize("raw", ["010-12345678", "01012345678", "12345678", "+86 10 1234 5678"])
def test_landline_gets_the_area_code(raw: str) -> None:
    got = normalize_phone(raw)
    assert got is not None and got.number == "+861012345678"


def test_other_area_code_from_the_plan() -> None:
    got = normalize_phone("87654321", PhonePlan(area_code="21"))
    assert got is not None and got.number == "+862187654321"


def test_extension_behind_a_switchboard() -> None:
    got = normalize_phone("(010) 1234 5678 ext 123")
    assert got is not None and (got.number, got.extension) == ("+861012345678", "123")
    got = normalize_phone("010-12345678 转 88")
    assert got is not None and (got.number, got.extension) == ("+861012345678", "88")


def test_internal_extension_kept() -> None:
    got = normalize_phone("8001")
    assert got is not None and got.number == "ext:8001"


def test_foreign_number() -> None:
    got = normalize_phone("+1 415 555 0100")
    assert got is not None and got.number == "+14155550100"


@pytest.mark.parametrize(
    "raw", ["", "   ", "<img src=x onerror=alert(1)>", "abc", "1" * 60, "138\r\n0013"]
)
def test_not_a_number(raw: str) -> None:
    assert normalize_phone(raw) is None
