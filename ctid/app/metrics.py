"""`DaemonReadings`: what the metrics collector reads from the daemon's parts at scrape time (AMI
link, sockets, bus and write queues, mail outbox, queue_log follower); it composes the daemon's
parts, so it lives beside the root (like `DaemonHealth`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog
from sqlalchemy.exc import SQLAlchemyError

from ctid.asterisk.ami import AmiConnection
from ctid.core.errors import StoreError
from ctid.mail import OutboxWorker
from ctid.metrics import AmiReading, MailReading, QueueLogReading, Readings
from ctid.tickets.queue_log_follow import QueueLogFollower

log = structlog.get_logger(__name__)


class Backlogged(Protocol):
    """A queue that says how many items wait in it (the bus, a write spool)."""

    @property
    def backlog(self) -> int: ...


@dataclass
class DaemonReadings:
    ami: AmiConnection
    bus: Backlogged
    write_queues: Mapping[str, Backlogged]
    mail: OutboxWorker
    queue_log: QueueLogFollower | None
    websocket_clients: Callable[[], int]

    async def __call__(self) -> Readings:
        h = self.ami.health()
        mail: MailReading | None = None
        try:
            health = await self.mail.health()
            mail = MailReading(
                outbox=health.pending,
                failed=health.failed,
                sent=self.mail.sent,
                failures=health.permanent_failures,
            )
        except (SQLAlchemyError, StoreError, OSError) as exc:
            # The database is down: the other readings matter most right now, so they still go.
            log.warning("metrics_mail_unreadable", error=str(exc)[:200])
        queue_log: QueueLogReading | None = None
        if self.queue_log is not None:
            now = asyncio.get_running_loop().time()
            queue_log = await asyncio.to_thread(self.queue_log.reading, now)
        return Readings(
            ami=AmiReading(
                up=h.logged_in, reconnects=h.reconnects, events=h.events_total, refused=h.refused
            ),
            websocket_clients=self.websocket_clients(),
            bus_backlog=self.bus.backlog,
            write_backlog={name: spool.backlog for name, spool in self.write_queues.items()},
            mail=mail,
            queue_log=queue_log,
        )
