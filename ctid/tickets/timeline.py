"""What happens to an incident after it opens (`IncidentTimeline`): work notes (internal, or mailed
to the caller), contacts (a later call attached so one problem keeps one incident, the duplicate
withdrawn; an IVR status query), and the timeline of notes, lifecycle history and calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.core.clock import Clock
from ctid.core.errors import TransitionError
from ctid.db.schema import (
    AuditLog,
    Call,
    Caller,
    CallerPhone,
    Incident,
    IncidentContact,
    IncidentHistory,
    IncidentNote,
)
from ctid.mail import enqueue_mail
from ctid.tickets._db import write_unit
from ctid.tickets.errors import InvalidInputError, TicketNotFoundError
from ctid.tickets.lifecycle import MAX_NOTE
from ctid.tickets.phones import PhonePlan, normalize_phone
from ctid.tickets.text import block_field, clip, one_line
from ctid.tickets.vocabulary import CLOSED_STATUSES

log = structlog.get_logger(__name__)

NoteKind = Literal["internal", "caller"]
NOTE_KINDS: tuple[NoteKind, ...] = get_args(NoteKind)
ContactKind = Literal["call", "status_query"]
CONTACT_KINDS: tuple[ContactKind, ...] = get_args(ContactKind)
MERGED_FLAG = "merged"
"""On an incident withdrawn into another one (`merged_into_id` says which)."""

EntryKind = Literal["lifecycle", "note", "call", "contact"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteView:
    id: int
    number: str
    at: datetime
    author: str
    kind: str
    body: str
    mail_key: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachResult:
    """The incident the call now belongs to, and the automatic duplicate withdrawn (if any)."""

    number: str
    withdrawn: str | None
    already: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEntry:
    """One line of an incident's timeline. `what`: the history action (create, classify, ...),
    the note kind (internal, caller), `call` (a call linked to the incident, `detail` has its
    facts) or the contact kind (call, status_query)."""

    at: datetime
    kind: EntryKind
    what: str
    actor: str | None
    text: str | None = None
    detail: dict[str, object] = field(default_factory=dict)


_KIND_ORDER: dict[str, int] = {"call": 0, "contact": 1, "lifecycle": 2, "note": 3}


class IncidentTimeline:
    """Notes, contacts and the timeline in the database. One transaction per method call."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, cfg: Config
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._site_name = cfg.site.name
        self._plan = PhonePlan(
            cfg.site.country_code, cfg.site.area_code, cfg.site.internal_extension_digits
        )

    # ----------------------------------------------------------------------- notes

    async def add_note(
        self, number: str, author: str, body: str, *, kind: str = "internal"
    ) -> NoteView:
        """A work note. `caller` notes are also mailed to the caller (refused, nothing saved, when
        the caller has no email address); `internal` ones are for staff only."""
        if kind not in NOTE_KINDS:
            raise InvalidInputError(f"kind must be one of {', '.join(NOTE_KINDS)}")
        who = _who(author)
        text = block_field("note", body, MAX_NOTE, required=True)
        assert text is not None
        now = self._clock.utcnow()
        async with write_unit(self._sessions) as s:
            row = await _incident(s, number)
            to: str | None = None
            if kind == "caller":
                caller = await s.get(Caller, row.caller_id) if row.caller_id else None
                to = caller.email if caller else None
                if not to:
                    raise InvalidInputError(
                        f"{row.number} has no caller email address: write an internal note "
                        "or call the caller"
                    )
            note = IncidentNote(incident_id=row.id, at=now, author=who, kind=kind, body=text)
            s.add(note)
            await s.flush()
            if to is not None:
                note.mail_key = f"incident:{row.number}:note:{note.id}"
                await enqueue_mail(
                    s,
                    self._clock,
                    dedupe_key=note.mail_key,
                    to=to,
                    subject=f"[{row.number}] {row.summary}"[:400],
                    text=self._note_text(row, text),
                )
                await s.flush()
            view = _note_view(note, row.number)
        log.info("incident_note_added", number=view.number, kind=kind, author=who)
        return view

    def _note_text(self, row: Incident, body: str) -> str:
        return (
            f"Update on your incident {row.number} ({row.summary}):\n\n{body}\n\n"
            f"Please quote {row.number} when you contact us about it.\n\n-- \n{self._site_name}\n"
        )

    async def notes(self, number: str) -> list[NoteView]:
        async with self._sessions() as s:
            row = await _incident(s, number)
            rows = await s.execute(
                select(IncidentNote)
                .where(IncidentNote.incident_id == row.id)
                .order_by(IncidentNote.at, IncidentNote.id)
            )
            return [_note_view(n, row.number) for n in rows.scalars()]

    # ----------------------------------------------------------------------- contacts

    async def attach_call(
        self, call_id: str, number: str, actor: str, *, caller_number: str | None = None
    ) -> AttachResult:
        """The call is about the open incident `number` (of the same caller): it becomes a
        contact on it, and the incident opened automatically for this call (if any, and open)
        is withdrawn into it — closed with the `merged` flag and `merged_into_id`, audited — so
        no duplicate stays open. Works while ringing (no call row yet: the app then must not
        open an incident for the call, see `attached_incident`; if it did anyway, attaching
        again withdraws that one) and after the answer."""
        cid = clip(call_id, 64)
        if cid is None:
            raise InvalidInputError("call_id is required")
        who = _who(actor)
        now = self._clock.utcnow()
        async with write_unit(self._sessions, lock=f"call:{cid}") as s:
            target = await _incident(s, number)
            if target.status in CLOSED_STATUSES or target.merged_into_id is not None:
                raise TransitionError(
                    f"cannot attach the call to {target.number}: it is {target.status}"
                )
            call = await s.scalar(select(Call).where(Call.call_id == cid))
            if call is not None:
                same = _same_caller(call, target)
            else:
                # No row yet (ringing, or attached while ringing): the live call's number says.
                same = await _number_is_callers(s, caller_number, target, self._plan)
            if not same:
                raise InvalidInputError(f"{target.number} is about another caller than this call")
            exists = await s.scalar(
                select(IncidentContact.id).where(
                    IncidentContact.incident_id == target.id,
                    IncidentContact.call_id == cid,
                    IncidentContact.kind == "call",
                )
            )
            moved = call is not None and call.incident_id not in (None, target.id)
            if exists is not None and not moved:
                if call is not None and call.incident_id is None:
                    call.incident_id = target.id  # attached while ringing; the row came later
                return AttachResult(number=target.number, withdrawn=None, already=True)
            withdrawn: Incident | None = None
            if call is not None and call.incident_id not in (None, target.id):
                auto = await s.get(Incident, call.incident_id)
                if auto is not None and auto.status in CLOSED_STATUSES:
                    raise TransitionError(
                        f"cannot attach the call to {target.number}: its own incident "
                        f"{auto.number} is {auto.status} already"
                    )
                withdrawn = auto
            if exists is None:
                s.add(
                    IncidentContact(
                        incident_id=target.id, call_id=cid, kind="call", at=now, actor=who
                    )
                )
            if call is not None:
                call.incident_id = target.id
            detail: dict[str, object] = {"call_id": cid}
            if withdrawn is not None:
                detail["withdrawn"] = withdrawn.number
                self._withdraw(s, withdrawn, target, who, now, cid)
            s.add(
                IncidentHistory(
                    incident_id=target.id,
                    at=now,
                    actor=who,
                    action="attach_call",
                    from_status=target.status,
                    to_status=target.status,
                    detail=detail,
                )
            )
            await s.flush()
            result = AttachResult(
                number=target.number, withdrawn=withdrawn.number if withdrawn else None
            )
        log.info(
            "call_attached",
            call_id=cid,
            number=result.number,
            withdrawn=result.withdrawn,
            actor=who,
        )
        return result

    @staticmethod
    def _withdraw(
        s: AsyncSession, auto: Incident, target: Incident, who: str, now: datetime, cid: str
    ) -> None:
        was = auto.status
        auto.status = "closed"
        auto.closed_at = now
        auto.merged_into_id = target.id
        auto.flags = [*(auto.flags or []), MERGED_FLAG]
        auto.updated_at = now
        s.add(
            IncidentHistory(
                incident_id=auto.id,
                at=now,
                actor=who,
                action="merge",
                from_status=was,
                to_status="closed",
                detail={"into": target.number, "call_id": cid},
            )
        )
        s.add(
            AuditLog(
                at=now,
                actor=who,
                action="incident_merged",
                target=auto.number,
                detail={"into": target.number, "call_id": cid, "was": was},
            )
        )

    async def record_status_query(self, call_id: str, number: str, actor: str = "ivr") -> bool:
        """The caller asked the IVR about `number` during `call_id`: a contact on it (once per
        call). False when it was recorded already."""
        cid = clip(call_id, 64)
        if cid is None:
            raise InvalidInputError("call_id is required")
        async with write_unit(self._sessions, lock=f"call:{cid}") as s:
            row = await _incident(s, number)
            exists = await s.scalar(
                select(IncidentContact.id).where(
                    IncidentContact.incident_id == row.id,
                    IncidentContact.call_id == cid,
                    IncidentContact.kind == "status_query",
                )
            )
            if exists is not None:
                return False
            s.add(
                IncidentContact(
                    incident_id=row.id,
                    call_id=cid,
                    kind="status_query",
                    at=self._clock.utcnow(),
                    actor=_who(actor),
                )
            )
        log.info("incident_status_queried", call_id=cid, number=row.number)
        return True

    async def attached_incident(self, call_id: str) -> str | None:
        """The incident a (ringing) call was attached to, so the app opens no new one for it."""
        async with self._sessions() as s:
            return await s.scalar(
                select(Incident.number)
                .join(IncidentContact, IncidentContact.incident_id == Incident.id)
                .where(IncidentContact.call_id == call_id, IncidentContact.kind == "call")
                .order_by(IncidentContact.id.desc())
                .limit(1)
            )

    # ----------------------------------------------------------------------- timeline

    async def timeline(self, number: str) -> list[TimelineEntry]:
        """Everything about the incident, oldest first: its calls (with their facts), later
        contacts, lifecycle history and notes. Ties keep calls before what was done in them."""
        async with self._sessions() as s:
            row = await _incident(s, number)
            out: list[tuple[datetime, int, int, TimelineEntry]] = []
            calls = await s.execute(select(Call).where(Call.incident_id == row.id))
            for c in calls.scalars():
                out.append(
                    (
                        c.started_at,
                        _KIND_ORDER["call"],
                        c.id,
                        TimelineEntry(
                            at=c.started_at,
                            kind="call",
                            what="call",
                            actor=c.answered_by_seat,
                            detail=_drop_none(
                                call_id=c.call_id,
                                caller_number=c.caller_number,
                                answered_at=c.answered_at,
                                ended_at=c.ended_at,
                                outcome=c.outcome,
                                talk_s=c.talk_s,
                                ivr_choice=c.ivr_choice,
                            ),
                        ),
                    )
                )
            contacts = await s.execute(
                select(IncidentContact).where(IncidentContact.incident_id == row.id)
            )
            for k in contacts.scalars():
                entry = TimelineEntry(
                    at=k.at,
                    kind="contact",
                    what=k.kind,
                    actor=k.actor,
                    detail=_drop_none(call_id=k.call_id),
                )
                out.append((k.at, _KIND_ORDER["contact"], k.id, entry))
            history = await s.execute(
                select(IncidentHistory).where(IncidentHistory.incident_id == row.id)
            )
            for h in history.scalars():
                info = dict(h.detail) if isinstance(h.detail, dict) else {}
                info.update(_drop_none(from_status=h.from_status, to_status=h.to_status))
                entry = TimelineEntry(
                    at=h.at, kind="lifecycle", what=h.action, actor=h.actor, detail=info
                )
                out.append((h.at, _KIND_ORDER["lifecycle"], h.id, entry))
            notes = await s.execute(select(IncidentNote).where(IncidentNote.incident_id == row.id))
            for n in notes.scalars():
                entry = TimelineEntry(
                    at=n.at,
                    kind="note",
                    what=n.kind,
                    actor=n.author,
                    text=n.body,
                    detail=_drop_none(mailed=True if n.mail_key else None),
                )
                out.append((n.at, _KIND_ORDER["note"], n.id, entry))
        out.sort(key=lambda t: (t[0], t[1], t[2]))
        return [t[3] for t in out]

    async def contact_count(self, number: str) -> int:
        """How many times the caller contacted the desk about the incident (see docs/KPIS.md,
        FCR): distinct calls linked or attached, plus status queries without a call; at least 1."""
        async with self._sessions() as s:
            row = await _incident(s, number)
            calls = set(
                (await s.execute(select(Call.call_id).where(Call.incident_id == row.id))).scalars()
            )
            extra = 0
            for cid in (
                await s.execute(
                    select(IncidentContact.call_id).where(IncidentContact.incident_id == row.id)
                )
            ).scalars():
                if cid is None:
                    extra += 1
                else:
                    calls.add(cid)
            return max(1, len(calls) + extra)


def _same_caller(call: Call, incident: Incident) -> bool:
    """Unknown on either side counts as the same (the agent chose it on the pop)."""
    if call.caller_id is not None and incident.caller_id is not None:
        return call.caller_id == incident.caller_id
    if call.caller_number and incident.caller_number:
        return call.caller_number == incident.caller_number
    return True


async def _number_is_callers(
    s: AsyncSession, raw: str | None, incident: Incident, plan: PhonePlan
) -> bool:
    """Whether a live call from `raw` may be about `incident`: its number is the incident's or
    one of its caller's phones. Unknown on either side counts as the same."""
    mine = normalize_phone(raw or "", plan)
    if mine is None:
        return True
    theirs = normalize_phone(incident.caller_number or "", plan)
    if theirs is not None and theirs.number == mine.number:
        return True
    if incident.caller_id is not None:
        phones = set(
            await s.scalars(
                select(CallerPhone.number_normalized).where(
                    CallerPhone.caller_id == incident.caller_id
                )
            )
        )
        return mine.number in phones
    return theirs is None


async def _incident(s: AsyncSession, number: str) -> Incident:
    text = one_line(number).upper()
    row = await s.scalar(select(Incident).where(Incident.number == text))
    if row is None:
        raise TicketNotFoundError(f"no incident {text[:40]!r}")
    return row


def _who(actor: str) -> str:
    who = clip(actor, 64)
    if who is None:
        raise InvalidInputError("actor is required")
    return who


def _note_view(n: IncidentNote, number: str) -> NoteView:
    return NoteView(
        id=n.id,
        number=number,
        at=n.at,
        author=n.author,
        kind=n.kind,
        body=n.body,
        mail_key=n.mail_key,
    )


def _drop_none(**values: object) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not None}
