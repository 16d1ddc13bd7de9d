"""Signed, expiring links for people without a login: a second-line group accepting or rejecting
a dispatched incident, a caller rating the service. HMAC-SHA256 over a small JSON payload."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from ctid.tickets.errors import TokenError, TokenExpiredError

Purpose = Literal["dispatch", "survey"]
MAX_TOKEN_CHARS = 1024
_DOMAIN = b"ctid-link-v1."  # binds the MAC to this use, so another ctid HMAC is never a token


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a verified token says. `group`/`assignee` only for dispatch links."""

    purpose: Purpose
    number: str
    expires_at: datetime
    group: str | None = None
    assignee: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> bytes:
    return hmac.new(secret, _DOMAIN + payload.encode("ascii"), hashlib.sha256).digest()


def check_secret(secret: bytes) -> bytes:
    if len(secret) < 16:
        raise ValueError("the link secret must be at least 16 bytes")
    return secret


def sign(secret: bytes, claims: LinkClaims) -> str:
    """A URL-safe token for `claims`."""
    body: dict[str, str | int] = {
        "p": claims.purpose,
        "n": claims.number,
        "e": int(claims.expires_at.timestamp()),
    }
    if claims.group is not None:
        body["g"] = claims.group
    if claims.assignee is not None:
        body["a"] = claims.assignee
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64(_mac(check_secret(secret), payload))}"


def verify(secret: bytes, token: str, purpose: Purpose, now: datetime) -> LinkClaims:
    """The claims of a genuine, unexpired token for `purpose`; `TokenError` otherwise."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise TokenError("the link is not valid")
    payload, sep, mac = token.partition(".")
    if not sep or not payload.isascii() or not mac.isascii():
        raise TokenError("the link is not valid")
    # Compare the text, not decoded bytes: base64 lets several spellings decode to the same MAC.
    if not hmac.compare_digest(mac, _b64(_mac(check_secret(secret), payload))):
        raise TokenError("the link is not valid (it was changed or is not from this desk)")
    try:
        body = json.loads(_unb64(payload))
        got_purpose = body["p"]
        number = body["n"]
        expires = datetime.fromtimestamp(int(body["e"]), UTC)
    except (binascii.Error, ValueError, KeyError, TypeError, OverflowError):
        raise TokenError("the link is not valid") from None
    if got_purpose != purpose or not isinstance(number, str):
        raise TokenError(f"the link is not a {purpose} link")
    if now >= expires:
        raise TokenExpiredError(f"the link for {number} expired on {expires:%Y-%m-%d %H:%M} UTC")
    group = body.get("g")
    assignee = body.get("a")
    return LinkClaims(
        purpose=purpose,
        number=number,
        expires_at=expires,
        group=group if isinstance(group, str) else None,
        assignee=assignee if isinstance(assignee, str) else None,
    )
