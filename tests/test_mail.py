"""The mail outbox against a real SMTP server (aiosmtpd): delivery, temporary and permanent
failures, the server being down, and a restart that must not send anything twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ctid.config import SmtpConfig
from ctid.core.clock import FakeClock
from ctid.db import create_engine, upgrade
from ctid.db.engine import session_factory
from ctid.db.schema import MailOutbox
from ctid.mail import MailError, OutboxWorker, SmtpMailer, enqueue_mail


@dataclass
class Inbox:
    """An SMTP handler: refuses some recipients temporarily or permanently, keeps the rest."""

    messages: list[Envelope] = field(default_factory=list)
    temp_fail_left: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("busy") and self.temp_fail_left > 0:
            self.temp_fail_left -= 1
            return "451 4.3.0 mailbox busy, try later"
        if address.startswith("nobody"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 Message accepted"


@pytest.fixture
async def smtp_server() -> AsyncIterator[tuple[Inbox, int]]:
    """A real aiosmtpd SMTP server on a loopback port, on the test's own event loop."""
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(inbox), "127.0.0.1", 0)
    try:
        yield inbox, int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'mail.db'}")
    await upgrade(eng)
    yield eng
    await eng.dispose()


def _cfg(port: int, **kw: Any) -> SmtpConfig:
    return SmtpConfig(
        host="127.0.0.1",
        port=port,
        from_address="desk@example.com",
        retry_base_s=60,
        max_attempts=3,
        timeout_s=5,
        **kw,
    )


async def _enqueue(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, key: str, to: str
) -> bool:
    async with sessions.begin() as s:
        return await enqueue_mail(
            s, clock, dedupe_key=key, to=to, subject=f"Subject {key} 张三", text="Body 你好"
        )


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, MailOutbox]:
    async with sessions() as s:
        return {r.dedupe_key: r for r in (await s.scalars(select(MailOutbox))).all()}


async def test_delivers_once_and_dedupes(
    engine: AsyncEngine, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    clock = FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    sessions = session_factory(engine)
    assert await _enqueue(sessions, clock, "inc:1:resolved", "user@example.com")
    assert not await _enqueue(sessions, clock, "inc:1:resolved", "user@example.com")
    worker = OutboxWorker(sessions, SmtpMailer(_cfg(port)), clock, _cfg(port))
    assert await worker.send_due() == 1
    assert await worker.send_due() == 0
    assert len(inbox.messages) == 1
    body = inbox.messages[0].content
    assert isinstance(body, bytes)
    assert b"Message-ID:" in body
    row = (await _rows(sessions))["inc:1:resolved"]
    assert row.status == "sent"
    assert row.sent_at == clock.utcnow()


async def test_temporary_failure_retries_with_backoff(
    engine: AsyncEngine, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    inbox.temp_fail_left = 1
    clock = FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    sessions = session_factory(engine)
    await _enqueue(sessions, clock, "k", "busy@example.com")
    worker = OutboxWorker(sessions, SmtpMailer(_cfg(port)), clock, _cfg(port))
    assert await worker.send_due() == 0
    row = (await _rows(sessions))["k"]
    assert row.status == "pending"
    assert row.attempts == 1
    assert "451" in (row.last_error or "")
    assert row.next_attempt_at is not None
    assert (row.next_attempt_at - clock.utcnow()).total_seconds() == 60
    assert await worker.send_due() == 0  # not due yet
    clock.advance(60)
    assert await worker.send_due() == 1
    assert len(inbox.messages) == 1


async def test_permanent_failure_is_not_retried(
    engine: AsyncEngine, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    clock = FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    sessions = session_factory(engine)
    await _enqueue(sessions, clock, "k", "nobody@example.com")
    worker = OutboxWorker(sessions, SmtpMailer(_cfg(port)), clock, _cfg(port))
    await worker.send_due()
    clock.advance(3600)
    await worker.send_due()
    row = (await _rows(sessions))["k"]
    assert row.status == "failed"
    assert row.attempts == 1
    assert "550" in (row.last_error or "")
    assert inbox.messages == []
    status = await worker.status()
    assert (status.failed, status.pending) == (1, 0)


async def test_server_down_then_up_gives_up_after_max_attempts(engine: AsyncEngine) -> None:
    clock = FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    sessions = session_factory(engine)
    await _enqueue(sessions, clock, "k", "user@example.com")
    cfg = _cfg(1)  # nothing listens on port 1
    with pytest.raises(MailError) as info:
        await SmtpMailer(cfg).send(EmailMessage())
    assert not info.value.permanent
    worker = OutboxWorker(sessions, SmtpMailer(cfg), clock, cfg)
    for _ in range(5):
        await worker.send_due()
        clock.advance(3600)
    row = (await _rows(sessions))["k"]
    assert row.status == "failed"
    assert row.attempts == 3


async def test_restart_never_sends_twice(
    engine: AsyncEngine, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    clock = FakeClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    sessions = session_factory(engine)
    await _enqueue(sessions, clock, "sent-before", "a@example.com")
    await _enqueue(sessions, clock, "in-flight", "b@example.com")
    await _enqueue(sessions, clock, "waiting", "c@example.com")
    first = OutboxWorker(sessions, SmtpMailer(_cfg(port)), clock, _cfg(port))
    # The first worker sends one mail, then claims a second and "dies" before it is marked sent.
    async with sessions.begin() as s:
        row = await s.scalar(select(MailOutbox).where(MailOutbox.dedupe_key == "sent-before"))
        assert row is not None
    assert await first.send_due() == 3
    async with sessions.begin() as s:
        rows = (await s.scalars(select(MailOutbox))).all()
        for r in rows:
            if r.dedupe_key == "in-flight":
                r.status = "sending"  # the crash window: handed over, not yet recorded
    before = len(inbox.messages)
    second = OutboxWorker(sessions, SmtpMailer(_cfg(port)), clock, _cfg(port))
    assert await second.recover() == 1
    assert await second.send_due() == 0
    assert len(inbox.messages) == before
    final = await _rows(sessions)
    assert final["sent-before"].status == "sent"
    assert final["in-flight"].status == "failed"
    assert "not retried" in (final["in-flight"].last_error or "")
