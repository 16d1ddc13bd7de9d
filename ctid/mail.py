"""Mail: an outbox table filled inside the unit of work that caused the mail, and a worker that
sends it with aiosmtplib — retries with backoff on temporary failures, none on permanent ones, and
never a second copy after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import aiosmtplib
import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import SmtpConfig
from ctid.core.clock import Clock
from ctid.core.errors import CtidError
from ctid.db.schema import MailOutbox

log = structlog.get_logger(__name__)


class MailError(CtidError):
    """A message could not be handed to the mail server."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(Protocol):
    """Hands one message to a mail server; raises `MailError` saying whether to retry."""

    async def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    """The real mailer: one SMTP session per message (the desk sends a few mails an hour)."""

    def __init__(self, cfg: SmtpConfig) -> None:
        self._cfg = cfg

    async def send(self, message: EmailMessage) -> None:
        cfg = self._cfg
        try:
            await aiosmtplib.send(
                message,
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username or None,
                password=cfg.password.get_secret_value() or None,
                use_tls=cfg.tls == "tls",
                start_tls=cfg.tls == "starttls",
                timeout=cfg.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            permanent = all(500 <= c < 600 for c in codes)
            raise MailError(f"recipients refused: {exc.recipients}", permanent=permanent) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise MailError(f"{exc.code} {exc.message}", permanent=500 <= exc.code < 600) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Connection refused, timeouts, dropped sessions: the server may be back later.
            raise MailError(f"{type(exc).__name__}: {exc}", permanent=False) from exc


@dataclass(frozen=True)
class OutboxStatus:
    pending: int
    sending: int
    sent: int
    failed: int


async def enqueue_mail(
    session: AsyncSession,
    clock: Clock,
    *,
    dedupe_key: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
) -> bool:
    """Add a mail to the outbox inside the caller's transaction; False if that key already exists.

    The dedupe key names the reason for the mail (`incident:42:dispatched:3`), so an event that is
    handled twice still sends one mail.
    """
    exists = await session.scalar(select(MailOutbox.id).where(MailOutbox.dedupe_key == dedupe_key))
    if exists is not None:
        return False
    now = clock.utcnow()
    session.add(
        MailOutbox(
            dedupe_key=dedupe_key,
            to_addr=to,
            subject=subject,
            body_text=text,
            body_html=html,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return True


class OutboxWorker:
    """Sends due outbox rows one at a time; `poke()` wakes it when a mail was enqueued."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        mailer: Mailer,
        clock: Clock,
        cfg: SmtpConfig,
        *,
        idle_poll_s: float = 30.0,
    ) -> None:
        self._sessions = sessions
        self._mailer = mailer
        self._clock = clock
        self._cfg = cfg
        self._idle_poll_s = idle_poll_s
        self._wakeup = asyncio.Event()
        self.sent = 0

    def poke(self) -> None:
        self._wakeup.set()

    async def recover(self) -> int:
        """After a restart: a row left `sending` may or may not have reached the server. Mark it
        failed (visible, resendable by hand) rather than risk a second copy."""
        async with self._sessions.begin() as s:
            result = await s.execute(
                update(MailOutbox)
                .where(MailOutbox.status == "sending")
                .values(
                    status="failed",
                    last_error="interrupted while sending (ctid stopped); not retried to avoid a "
                    "duplicate",
                )
            )
        count = int(getattr(result, "rowcount", 0) or 0)
        if count:
            log.warning("mail_interrupted_marked_failed", count=count)
        return count

    async def _claim(self) -> MailOutbox | None:
        now = self._clock.utcnow()
        async with self._sessions.begin() as s:
            row = await s.scalar(
                select(MailOutbox)
                .where(MailOutbox.status == "pending", MailOutbox.next_attempt_at <= now)
                .order_by(MailOutbox.next_attempt_at, MailOutbox.id)
                .limit(1)
            )
            if row is None:
                return None
            claimed = await s.execute(
                update(MailOutbox)
                .where(MailOutbox.id == row.id, MailOutbox.status == "pending")
                .values(status="sending", attempts=MailOutbox.attempts + 1)
            )
            if not getattr(claimed, "rowcount", 0):
                return None  # another worker took it
            # The ORM-enabled UPDATE already refreshed `row` in this session (status, attempts).
            return row

    def _message(self, row: MailOutbox) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self._cfg.from_address
        msg["To"] = row.to_addr
        msg["Subject"] = row.subject
        msg["Date"] = formatdate(row.created_at.timestamp(), usegmt=True)
        # Stable id: a receiving system can drop a copy that a crash made us send twice.
        digest = hashlib.sha256(row.dedupe_key.encode()).hexdigest()[:32]
        domain = self._cfg.from_address.rpartition("@")[2] or "ctid.invalid"
        msg["Message-ID"] = f"<{digest}@{domain}>"
        msg.set_content(row.body_text)
        if row.body_html:
            msg.add_alternative(row.body_html, subtype="html")
        return msg

    async def send_due(self) -> int:
        """Send every row that is due now; returns how many were sent."""
        sent = 0
        while True:
            row = await self._claim()
            if row is None:
                return sent
            bound = log.bind(mail_id=row.id, dedupe_key=row.dedupe_key, attempt=row.attempts)
            try:
                await self._mailer.send(self._message(row))
            except MailError as exc:
                await self._failed(row, exc)
                bound.warning("mail_send_failed", error=str(exc)[:300], permanent=exc.permanent)
                continue
            async with self._sessions.begin() as s:
                await s.execute(
                    update(MailOutbox)
                    .where(MailOutbox.id == row.id)
                    .values(status="sent", sent_at=self._clock.utcnow(), last_error=None)
                )
            sent += 1
            self.sent += 1
            bound.info("mail_sent", to=row.to_addr)

    async def _failed(self, row: MailOutbox, exc: MailError) -> None:
        give_up = exc.permanent or row.attempts >= self._cfg.max_attempts
        delay = self._cfg.retry_base_s * (2 ** max(0, row.attempts - 1))
        async with self._sessions.begin() as s:
            await s.execute(
                update(MailOutbox)
                .where(MailOutbox.id == row.id)
                .values(
                    status="failed" if give_up else "pending",
                    last_error=str(exc)[:1000],
                    next_attempt_at=None
                    if give_up
                    else self._clock.utcnow() + timedelta(seconds=delay),
                )
            )

    async def next_due_in(self) -> float:
        async with self._sessions() as s:
            nxt = await s.scalar(
                select(MailOutbox.next_attempt_at)
                .where(MailOutbox.status == "pending")
                .order_by(MailOutbox.next_attempt_at)
                .limit(1)
            )
        if nxt is None:
            return self._idle_poll_s
        wait = (nxt - self._clock.utcnow()).total_seconds()
        return max(0.0, min(wait, self._idle_poll_s))

    async def status(self) -> OutboxStatus:
        async with self._sessions() as s:
            rows = (await s.execute(select(MailOutbox.status))).scalars().all()
        return OutboxStatus(
            pending=rows.count("pending"),
            sending=rows.count("sending"),
            sent=rows.count("sent"),
            failed=rows.count("failed"),
        )

    async def run(self) -> None:
        await self.recover()
        while True:
            try:
                await self.send_due()
                wait = await self.next_due_in()
            except SQLAlchemyError as exc:
                # A dead database is not the end: nothing is lost (rows stay pending), try again.
                log.error("mail_outbox_unavailable", error=str(exc)[:300])
                wait = self._idle_poll_s
            self._wakeup.clear()
            # asyncio.timeout, not wait_for (3.11's wait_for can swallow a cancellation).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()
