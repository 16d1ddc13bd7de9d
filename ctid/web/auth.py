"""The signed double-submit tokens that protect the forms of pages without a session (the login
form, the e-mailed link pages)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{20,100}$")


class PageFormTokens:
    """CSRF for forms on pages without a session (the login form, the e-mailed link pages): a
    random nonce in a SameSite=Strict cookie and its HMAC — keyed with the web secret and bound
    to `purpose` and the page's `context` (the link token) — in a hidden field; both must come
    back (a double-submit cookie a cross-site page can neither read nor forge)."""

    def __init__(self, secret: bytes, purpose: str) -> None:
        if len(secret) < 16:
            raise ValueError("the web secret must be at least 16 bytes")
        self._key = hashlib.sha256(purpose.encode("ascii") + b"\x00" + secret).digest()

    def issue(self, context: str = "") -> tuple[str, str]:
        """A fresh (cookie nonce, form token) pair."""
        nonce = secrets.token_urlsafe(24)
        return nonce, self._sign(nonce, context)

    def check(self, nonce: str | None, token: str | None, context: str = "") -> bool:
        if not nonce or not token or not _TOKEN.match(nonce):
            return False
        return hmac.compare_digest(self._sign(nonce, context), token)

    def _sign(self, nonce: str, context: str) -> str:
        message = nonce.encode("ascii")
        if context:
            message += b"\x00" + context.encode("utf-8")
        mac = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


class LoginFormTokens(PageFormTokens):
    """CSRF for the login form, before any session exists (see `PageFormTokens`)."""

    def __init__(self, secret: bytes) -> None:
        super().__init__(secret, "ctid-login-form")
