"""The outbox worker against a real SMTP server (aiosmtpd): a queued mail wakes it at once; a
session that breaks after DATA is resent with the same Message-ID, and said so; permanent
failures are counted for health and logged as errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from ctid.config import SmtpConfig
from ctid.core.clock import FakeClock
from ctid.db import create_engine, upgrade
from ctid.db.engine import session_factory
from ctid.mail import OutboxWorker, SmtpMailer, enqueue_mail

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@dataclass
class Inbox:
    """Keeps what arrives; `stall_first` accepts the first DATA but never answers it."""

    stall_first: bool = False
    messages: list[bytes] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(envelope.content)
        self.arrived.set()
        if self.stall_first and len(self.messages) == 1:
            await self.release.wait()  # the client times out waiting for "250"
        return "250 Message accepted"


@pytest.fixture
async def inbox_port() -> AsyncIterator[tuple[Inbox, int]]:
    inbox = Inbox()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(inbox), "127.0.0.1", 0)
    try:
        yield inbox, int(server.sockets[0].getsockname()[1])
    finally:
        inbox.release.set()
        server.close()
        await server.wait_closed()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'mail.db'}")
    await upgrade(eng)
    yield eng
    await eng.dispose()


def smtp(port: int, **kw: float) -> SmtpConfig:
    return SmtpConfig(
        host="127.0.0.1",
        port=port,
        from_address="desk@example.com",
        retry_base_s=60,
        max_attempts=3,
        **kw,  # type: ignore[arg-type]
    )


async def test_a_queued_mail_wakes_the_outbox_at_once(
    engine: AsyncEngine, inbox_port: tuple[Inbox, int]
) -> None:
    inbox, port = inbox_port
    sessions = session_factory(engine)
    clock = FakeClock(T0)
    worker = OutboxWorker(sessions, SmtpMailer(smtp(port)), clock, smtp(port), idle_poll_s=3600)
    worker.watch(sessions)
    task = asyncio.create_task(worker.run())
    try:
        await worker.send_due()  # nothing yet; the worker now waits up to an hour
        async with sessions.begin() as s:
            await enqueue_mail(s, clock, dedupe_key="k1", to="a@example.com", subject="s", text="t")
        # Only the poke can deliver it before the hour-long idle poll.
        await asyncio.wait_for(inbox.arrived.wait(), timeout=30)
    finally:
        task.cancel()
        # Stops even when the cancel lands in the middle of the SMTP session.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)
    assert len(inbox.messages) == 1


async def test_a_mail_queued_while_the_outbox_looks_is_not_left_for_the_idle_poll(
    engine: AsyncEngine, inbox_port: tuple[Inbox, int]
) -> None:
    """The lost wake-up: the poke lands while the worker is between finding nothing and going
    to sleep (here: inside `next_due_in`); the worker must not sleep through it."""
    inbox, port = inbox_port
    sessions = session_factory(engine)
    clock = FakeClock(T0)
    worker = OutboxWorker(sessions, SmtpMailer(smtp(port)), clock, smtp(port), idle_poll_s=3600)
    worker.watch(sessions)
    looked = worker.next_due_in
    queued = False

    async def next_due_in() -> float:
        nonlocal queued
        wait = await looked()  # nothing is due: an hour
        if not queued:
            queued = True
            async with sessions.begin() as s:
                await enqueue_mail(
                    s, clock, dedupe_key="k0", to="a@example.com", subject="s", text="t"
                )
        return wait

    worker.next_due_in = next_due_in  # type: ignore[method-assign]
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(inbox.arrived.wait(), timeout=30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)
    assert queued and len(inbox.messages) == 1


async def test_a_timeout_after_data_resends_with_the_same_message_id(
    engine: AsyncEngine, inbox_port: tuple[Inbox, int]
) -> None:
    inbox, port = inbox_port
    inbox.stall_first = True
    sessions = session_factory(engine)
    clock = FakeClock(T0)
    cfg = smtp(port, timeout_s=0.5)
    worker = OutboxWorker(sessions, SmtpMailer(cfg), clock, cfg)
    async with sessions.begin() as s:
        await enqueue_mail(s, clock, dedupe_key="k2", to="a@example.com", subject="s", text="t")
    with capture_logs() as logs:
        assert await worker.send_due() == 0
        inbox.release.set()
        clock.advance(61)
        assert await worker.send_due() == 1
    ids = [
        next(line for line in m.splitlines() if line.lower().startswith(b"message-id:"))
        for m in inbox.messages
    ]
    assert len(ids) == 2 and ids[0] == ids[1]
    resend = [e for e in logs if e["event"] == "mail_will_resend_same_message_id"]
    assert [e["message_id"] for e in resend] == [ids[0].split(b":", 1)[1].strip().decode()]
    assert (await worker.health()).resent_maybe_duplicate == 1


async def test_permanent_failures_are_counted_and_logged_as_errors(
    engine: AsyncEngine, inbox_port: tuple[Inbox, int]
) -> None:
    _inbox, port = inbox_port
    sessions = session_factory(engine)
    clock = FakeClock(T0)
    worker = OutboxWorker(sessions, SmtpMailer(smtp(port)), clock, smtp(port))
    async with sessions.begin() as s:
        await enqueue_mail(
            s, clock, dedupe_key="k3", to="nobody@example.com", subject="s", text="t"
        )
        await enqueue_mail(s, clock, dedupe_key="k4", to="a@example.com", subject="s", text="t")
    with capture_logs() as logs:
        assert await worker.send_due() == 1
    health = await worker.health()
    assert (health.failed, health.permanent_failures, health.pending) == (1, 1, 0)
    assert health.last_failure is not None and "nobody@example.com" in health.last_failure
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["mail_failed_permanently"]
