"""Mail: an outbox table filled inside the unit of work that caused the mail, and a worker that
sends it with aiosmtplib — woken when a mail is queued, retries with backoff on temporary failures
(always with the same Message-ID), none on permanent ones (counted for health, logged as errors)."""

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
from sqlalchemy import event, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session as SyncSession

from ctid.config import SmtpConfig
from ctid.core.clock import Clock
from ctid.core.errors import CtidError
from ctid.db.schema import MailOutbox

log = structlog.get_logger(__name__)


class MailError(CtidError):
    """A message could not be handed to the mail server."""

    def __init__(self, message: str, *, permanent: bool, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.maybe_sent = maybe_sent
        """The session broke at a point where the server may already have the message (a
        timeout or a dropped link): a retry may deliver a second copy, with the same Message-ID."""


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
        except (aiosmtplib.SMTPConnectError, ConnectionRefusedError) as exc:
            # Never reached the server: nothing can have been delivered.
            raise MailError(f"{type(exc).__name__}: {exc}", permanent=False) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # Timeouts and dropped sessions: the server may be back later, and may already have
            # accepted the message (a timeout waiting for the answer to DATA).
            raise MailError(
                f"{type(exc).__name__}: {exc}", permanent=False, maybe_sent=True
            ) from exc


@dataclass(frozen=True)
class OutboxStatus:
    pending: int
    sending: int
    sent: int
    failed: int


@dataclass(frozen=True)
class MailHealth:
    """For /healthz and ops: what the outbox holds, and what failed for good since start."""

    pending: int
    failed: int
    """Rows in the outbox that will not be sent (permanent failures, attempts used up)."""
    permanent_failures: int
    """Mails given up since this process started."""
    resent_maybe_duplicate: int
    """Retries after a session broke when the server may already have had the message."""
    last_failure: str | None


_OUTBOX_KEY = "ctid_mail_outbox"


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
    worker = session.info.get(_OUTBOX_KEY)
    if isinstance(worker, OutboxWorker) and not session.info.get(_OUTBOX_KEY + "_armed"):
        # Wake the worker once this transaction commits (not before: it would find nothing).
        session.info[_OUTBOX_KEY + "_armed"] = True
        event.listen(session.sync_session, "after_commit", worker.on_commit, once=True)
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
        self.permanent_failures = 0
        self.resent_maybe_duplicate = 0
        self.last_failure: str | None = None

    def poke(self) -> None:
        """A mail was queued: send it now, not at the next idle poll."""
        self._wakeup.set()

    def watch(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """The wiring point: every session from `sessions` that queues a mail (`enqueue_mail`)
        pokes this worker when it commits."""
        sessions.configure(info={_OUTBOX_KEY: self})

    def on_commit(self, session: object) -> None:
        if isinstance(session, SyncSession):
            session.info.pop(_OUTBOX_KEY + "_armed", None)
        self.poke()

    async def health(self) -> MailHealth:
        st = await self.status()
        return MailHealth(
            pending=st.pending + st.sending,
            failed=st.failed,
            permanent_failures=self.permanent_failures,
            resent_maybe_duplicate=self.resent_maybe_duplicate,
            last_failure=self.last_failure,
        )

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
            self.permanent_failures += count
            self.last_failure = f"{count} mail(s) interrupted while sending"
            log.error("mail_interrupted_marked_failed", count=count)
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

    def message_id(self, dedupe_key: str) -> str:
        """Stable per mail (from its dedupe key): every resend carries the same id, so a
        receiving system can drop a copy that a broken session made us send twice."""
        digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
        domain = self._cfg.from_address.rpartition("@")[2] or "ctid.invalid"
        return f"<{digest}@{domain}>"

    def _message(self, row: MailOutbox) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self._cfg.from_address
        msg["To"] = row.to_addr
        msg["Subject"] = row.subject
        msg["Date"] = formatdate(row.created_at.timestamp(), usegmt=True)
        msg["Message-ID"] = self.message_id(row.dedupe_key)
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
                gave_up = await self._failed(row, exc)
                if gave_up:
                    self.permanent_failures += 1
                    self.last_failure = f"{row.to_addr}: {str(exc)[:200]}"
                    bound.error(
                        "mail_failed_permanently",
                        to=row.to_addr,
                        error=str(exc)[:300],
                        permanent=exc.permanent,
                    )
                else:
                    bound.warning(
                        "mail_send_failed",
                        error=str(exc)[:300],
                        permanent=exc.permanent,
                        maybe_sent=exc.maybe_sent,
                    )
                    if exc.maybe_sent:
                        # Not silent: the retry carries the same Message-ID, so the receiving
                        # side can drop the copy if the first one did arrive.
                        self.resent_maybe_duplicate += 1
                        bound.warning(
                            "mail_will_resend_same_message_id",
                            message_id=self.message_id(row.dedupe_key),
                        )
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

    async def _failed(self, row: MailOutbox, exc: MailError) -> bool:
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
        return give_up

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
            # Cleared before looking, not after: a mail queued while this pass looks (its poke
            # lands during `send_due` or `next_due_in`) keeps the event set, so the wait below
            # returns at once instead of sleeping until the next idle poll.
            self._wakeup.clear()
            try:
                await self.send_due()
                wait = await self.next_due_in()
            except SQLAlchemyError as exc:
                # A dead database is not the end: nothing is lost (rows stay pending), try again.
                log.error("mail_outbox_unavailable", error=str(exc)[:300])
                wait = self._idle_poll_s
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # A cancel that landed inside the SMTP client or the database driver can be
                # swallowed there; honour it here, or shutdown would wait for the next mail.
                raise asyncio.CancelledError
            # asyncio.timeout, not wait_for (3.11's wait_for can swallow a cancellation).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()
