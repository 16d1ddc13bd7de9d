"""Signed links: a genuine token round-trips; any change, another secret, another purpose or the
expiry makes it fail."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from ctid.tickets.errors import TokenError, TokenExpiredError
from ctid.tickets.tokens import LinkClaims, sign, verify

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
CLAIMS = LinkClaims(
    purpose="dispatch",
    number="INC-20261122-0001",
    expires_at=NOW + timedelta(days=7),
    group="network",
    assignee="li.lei@example.com",
)


def test_round_trip() -> None:
    token = sign(SECRET, CLAIMS)
    assert token.isascii() and "/" not in token and "+" not in token
    assert verify(SECRET, token, "dispatch", NOW) == CLAIMS


def test_every_changed_character_is_refused() -> None:
    token = sign(SECRET, CLAIMS)
    for index in range(len(token)):
        for ch in "AB_":
            if token[index] == ch:
                continue
            changed = token[:index] + ch + token[index + 1 :]
            with pytest.raises(TokenError):
                verify(SECRET, changed, "dispatch", NOW)


def test_forged_payload_with_old_mac_is_refused() -> None:
    token = sign(SECRET, CLAIMS)
    payload, mac = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["g"] = "desktop"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError, match="changed"):
        verify(SECRET, f"{forged}.{mac}", "dispatch", NOW)


def test_other_secret_is_refused() -> None:
    token = sign(b"another-secret-of-32-bytes-000000", CLAIMS)
    with pytest.raises(TokenError):
        verify(SECRET, token, "dispatch", NOW)


def test_other_purpose_is_refused() -> None:
    token = sign(SECRET, CLAIMS)
    with pytest.raises(TokenError, match="survey"):
        verify(SECRET, token, "survey", NOW)


def test_expiry() -> None:
    token = sign(SECRET, CLAIMS)
    assert verify(SECRET, token, "dispatch", CLAIMS.expires_at - timedelta(seconds=1))
    with pytest.raises(TokenExpiredError, match="expired"):
        verify(SECRET, token, "dispatch", CLAIMS.expires_at)


@pytest.mark.parametrize("junk", ["", ".", "abc", "a.b.c", "é.é", "x" * 2000, "eyJ9.!!!"])
def test_junk_is_refused(junk: str) -> None:
    with pytest.raises(TokenError):
        verify(SECRET, junk, "dispatch", NOW)


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        sign(b"short", CLAIMS)
