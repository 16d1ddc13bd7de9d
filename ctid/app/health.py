"""`DaemonHealth`: the composition root's health report for /healthz (AMI link, database, the
write spool's backlog); it composes the daemon's parts, so it lives beside the root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.asterisk.ami import AmiConnection
from ctid.spool import WriteSpool
from ctid.web.ports import (
    HealthReport,
)


@dataclass
class DaemonHealth:
    ami: AmiConnection
    sessions: async_sessionmaker[AsyncSession]
    spool: WriteSpool
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
        checks["db_writes_waiting"] = str(self.spool.backlog)
        if self.spool.backlog:
            ok = False
        return HealthReport(ok=ok, checks=checks)
