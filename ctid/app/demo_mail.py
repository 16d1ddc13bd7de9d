"""The demo's SMTP catcher: an aiosmtpd server on loopback that keeps every mail ctid sends, so
the mailbox page (`ctid.web.demo_mailbox`) can show them. Nothing leaves the machine."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP

from ctid.core.clock import SystemClock
from ctid.web.demo_mailbox import CaughtMail


def _text_of(raw: bytes) -> tuple[str, str]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(preferencelist=("plain", "html"))
    body = part.get_content() if part is not None else ""
    return str(msg.get("Subject", "")), str(body)


class MailCatcher:
    """`async with MailCatcher() as c:` listens on `c.port`; `c.mails` grows as mail arrives and
    `c.arrived` is set on each one (tests and the smoke run wait on it)."""

    def __init__(self, clock: SystemClock | None = None) -> None:
        self.mails: list[CaughtMail] = []
        self.arrived = asyncio.Event()
        self.port = 0
        self._clock = clock or SystemClock()
        self._server: asyncio.Server | None = None

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        subject, body = _text_of(bytes(envelope.content))
        self.mails.append(
            CaughtMail(
                at=self._clock.now().strftime("%Y-%m-%d %H:%M:%S"),
                sender=str(envelope.mail_from),
                recipients=tuple(str(r) for r in envelope.rcpt_tos),
                subject=subject,
                body=body,
            )
        )
        self.arrived.set()
        return "250 OK"

    def snapshot(self) -> Sequence[CaughtMail]:
        return list(self.mails)

    async def __aenter__(self) -> MailCatcher:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="ctid-demo"), "127.0.0.1", 0
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
