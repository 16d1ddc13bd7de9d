"""`DaemonHealth`: the composition root's health report for /healthz (AMI link, database, the
write journal's depth, the mail outbox's failures); it composes the daemon's parts, so it lives
beside the root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.asterisk.ami import AmiConnection
from ctid.journal import WriteJournal
from ctid.mail import OutboxWorker
from ctid.web.ports import (
    HealthReport,
)


@dataclass
class DaemonHealth:
    ami: AmiConnection
    sessions: async_sessionmaker[AsyncSession]
    journal: WriteJournal
    mail: OutboxWorker | None
    """None when mail is off (`[smtp] enabled = false`)."""
    loop_time: Callable[[], float]

    async def health(self) -> HealthReport:
        h = self.ami.health()
        checks = {
            "ami": "logged in" if h.logged_in else f"down ({h.last_error or 'connecting'})",
            "ami_reconnects": str(h.reconnects),
            "ami_events_per_s": f"{h.events_per_s:.1f}",
        }
        ok = h.logged_in
        try:
            async with self.sessions() as s:
                await s.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # a health check reports, it never raises
            checks["database"] = f"down ({type(exc).__name__})"
            ok = False
        # Accepted writes on local disk not yet in the database (they survive a restart).
        checks["journal_waiting"] = str(self.journal.backlog)
        if self.journal.backlog:
            ok = False
        if self.mail is not None:
            try:
                mail = await self.mail.health()
            except Exception as exc:  # a health check reports, it never raises
                checks["mail"] = f"unknown ({type(exc).__name__})"
            else:
                checks["mail_waiting"] = str(mail.pending)
                checks["mail_failed"] = str(mail.failed)
                # Shown, not failed on: the desk works; ops must resend those mails by hand.
                checks["mail_permanent_failures"] = str(mail.permanent_failures)
                if mail.last_failure:
                    checks["mail_last_failure"] = mail.last_failure[:200]
        return HealthReport(ok=ok, checks=checks)
