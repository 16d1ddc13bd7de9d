"""`/healthz`'s report from the daemon's real parts: the write journal's depth (accepted writes
not yet in the database) and the mail outbox's permanent failures are shown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ctid.app.health import DaemonHealth
from ctid.asterisk.ami import AmiConnection
from ctid.config import AmiConfig, SmtpConfig
from ctid.core.clock import FakeClock
from ctid.db import create_engine, session_factory, upgrade
from ctid.db.schema import MailOutbox
from ctid.journal import WriteJournal
from ctid.mail import OutboxWorker, SmtpMailer
from ctid.tickets.journal_ops import RETRY_ON, marker, registry
from ctid.tickets.writes import CallWriter
from tests.tickets.conftest import SECRET, desk_config

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def test_healthz_shows_the_journal_depth_and_the_mails_given_up(
    sqlite_url: str, tmp_path: Path
) -> None:
    await upgrade(sqlite_url)
    engine = create_engine(sqlite_url)
    try:
        sessions = session_factory(engine)
        clock = FakeClock(T0)
        journal = WriteJournal(
            tmp_path / "journal.db",
            registry(
                CallWriter.build(sessions, clock, desk_config(), link_secret=SECRET),
                sessions,
                clock,
            ),
            marker(sessions),
            retry_on=RETRY_ON,
        )
        smtp = SmtpConfig(enabled=True, host="127.0.0.1", port=1)
        mail = OutboxWorker(sessions, SmtpMailer(smtp), clock, smtp)
        ami = AmiConnection(AmiConfig(port=1), lambda _frame: None)
        health = DaemonHealth(ami, sessions, journal, mail, lambda: 0.0)

        before = (await health.health()).checks
        assert (before["journal_waiting"], before["mail_permanent_failures"]) == ("0", "0")

        # Two writes accepted (on disk) and not applied yet; a mail ctid stopped while sending.
        for target in ("a", "b"):
            await journal.submit("audit", {"actor": "t", "action": "health", "target": target})
        async with sessions.begin() as s:
            s.add(
                MailOutbox(
                    dedupe_key="k1",
                    to_addr="duty@example.com",
                    subject="s",
                    body_text="b",
                    status="sending",
                    created_at=T0,
                )
            )
        assert await mail.recover() == 1
        report = await health.health()
        assert report.checks["journal_waiting"] == "2"
        assert report.checks["mail_permanent_failures"] == "1"
        assert report.checks["mail_failed"] == "1"
        assert not report.ok  # writes are waiting

        await journal.drain()
        assert (await health.health()).checks["journal_waiting"] == "0"
        journal.close()
    finally:
        await engine.dispose()
