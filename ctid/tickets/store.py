"""The incident store: numbering, creation (from every answered call, idempotently), lifecycle
steps with history, optimistic locking and outbox mail, signed links, the callback list, and the
call facts (`calls`, `ring_attempts`). SQLAlchemy stays in here; views go out."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal, assert_never
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from ctid.config import Config
from ctid.core.clock import Clock
from ctid.core.errors import TransitionError
from ctid.db.schema import (
    AuditLog,
    Call,
    Callback,
    CallbackCall,
    Caller,
    Incident,
    IncidentHistory,
    MailOutbox,
    RingAttempt,
    next_incident_seq,
)
from ctid.mail import enqueue_mail
from ctid.tickets._db import (
    callback_view,
    caller_ids_for,
    caller_views,
    history_view,
    incident_view,
    write_unit,
)
from ctid.tickets.directory import phone_plan
from ctid.tickets.errors import ConflictError, InvalidInputError, NotFoundError
from ctid.tickets.facts import CallFacts, CallRecordIn
from ctid.tickets.lifecycle import (
    CATEGORIES,
    CHANNELS,
    LEVELS,
    OPEN_STATUSES,
    REQUEST_TYPES,
    STATUSES,
    Accept,
    Action,
    DispatchMail,
    EscalationMail,
    IncidentState,
    Prioritize,
    Rate,
    Reject,
    ResolvedMail,
    Rules,
    SatisfactionMail,
    Status,
    TransferLiveCall,
    parse_action,
    transition,
)
from ctid.tickets.notices import (
    Mail,
    Site,
    dispatch_mail,
    escalation_mail,
    resolved_mail,
    satisfaction_mail,
)
from ctid.tickets.phones import normalize_phone
from ctid.tickets.text import block_field, clip, line_field, one_line
from ctid.tickets.tokens import LinkClaims, check_secret, sign, verify
from ctid.tickets.views import (
    ApplyResult,
    CallbackView,
    CallerView,
    HistoryView,
    IncidentView,
)

log = structlog.get_logger(__name__)

DISPATCH_LINK_PATH = "/incidents/respond/{token}"
"""Accept/reject page for a dispatched incident (`?decision=accept|reject`). The page must act on
POST only: mail scanners open every link in a message."""
SURVEY_LINK_PATH = "/survey/{token}"
"""Satisfaction survey page (POST score 1-5 and a comment)."""

CallbackReason = Literal["abandoned", "missed", "after_hours", "capped"]
CALLBACK_REASONS: tuple[str, ...] = ("abandoned", "missed", "after_hours", "capped")
CALLBACK_ACTIVE = ("open", "in_progress")
CALLBACK_GOT_THROUGH = "caller_got_through"
"""The outcome of a callback closed because the caller's later call was answered."""
CALLBACK_OUTCOMES: dict[str, str] = {
    "reached": "done",
    "not_needed": "done",
    "no_answer": "open",
    "wrong_number": "failed",
}
"""outcome → the callback's next status (`no_answer` retries until `max_callback_attempts`)."""

MAX_SUMMARY = 500
MAX_DESCRIPTION = 20_000
_ACTOR_MAX = 64


class IncidentStore:
    """Incidents, callbacks and call facts in the database. One transaction per method call."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        cfg: Config,
        *,
        link_secret: bytes,
        dispatch_link_ttl_s: int = 7 * 86400,
        survey_link_ttl_s: int = 14 * 86400,
        max_callback_attempts: int = 3,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._rules = Rules.from_config(cfg)
        self._tz = ZoneInfo(cfg.site.timezone)
        self._site = Site(cfg.site.name, self._tz)
        self._prefix = cfg.incidents.number_prefix
        self._plan = phone_plan(cfg.site)
        self._public_url = cfg.web.public_url.rstrip("/")
        self._secret = check_secret(link_secret)
        self._dispatch_ttl = timedelta(seconds=dispatch_link_ttl_s)
        self._survey_ttl = timedelta(seconds=survey_link_ttl_s)
        self._max_callback_attempts = max_callback_attempts
        self._ivr = {o.digit: o for o in cfg.ivr.options if o.action == "queue"}
        self._number_re = re.compile(rf"^{self._prefix}-(\d{{8}})-(\d{{4,6}})$")

    @property
    def rules(self) -> Rules:
        return self._rules

    # ----------------------------------------------------------------------- numbers

    def parse_number(self, entered: str) -> str | None:
        """`INC-20261122-0001` (any case) or the digits `202611220001` → the incident number."""
        text = one_line(entered).upper()
        if self._number_re.match(text):
            return text
        if re.fullmatch(r"\d{12,14}", text):
            return f"{self._prefix}-{text[:8]}-{int(text[8:]):04d}"
        return None

    async def _next_number(self, s: AsyncSession, now: datetime) -> str:
        # The site-local day: an incident opened at 07:30 in Shanghai is 23:30 UTC the day before.
        day = now.astimezone(self._tz).date()
        seq = await next_incident_seq(s, day)
        return f"{self._prefix}-{day:%Y%m%d}-{seq:04d}"

    # ----------------------------------------------------------------------- creating

    async def create_from_call(self, facts: CallFacts) -> IncidentView:
        """The incident for an answered call: channel phone, caller matched by number, the
        answering seat as owner, request type from the IVR choice, linked to the call. Calling
        it again for the same call returns the same incident."""
        call_id = clip(facts.call_id, 64)
        if call_id is None:
            raise InvalidInputError("call_id is required")
        seat = clip(facts.answered_by_seat, 64)
        if seat is None:
            raise InvalidInputError("answered_by_seat is required")
        _aware(facts.answered_at)
        async with write_unit(self._sessions, lock=f"call:{call_id}") as s:
            call = await s.scalar(select(Call).where(Call.call_id == call_id))
            if call is not None and call.incident_id is not None:
                existing = await s.get(Incident, call.incident_id)
                if existing is not None:
                    return incident_view(existing)
            number_norm, caller_id, caller_name = await self._identify(
                s, facts.caller_number, facts.caller_name
            )
            option = self._ivr.get(facts.ivr_digit or "")
            # The IVR's CTID_CATEGORY is its option's request type when the digit is unknown.
            request_type = option.request_type if option else "fault"
            if option is None and facts.category in REQUEST_TYPES:
                request_type = facts.category
            category = facts.category if facts.category in CATEGORIES else None
            now = self._clock.utcnow()
            number = await self._next_number(s, now)
            who = caller_name or number_norm or "unknown caller"
            summary = f"Phone call from {who}" + (f" ({option.label})" if option else "")
            row = Incident(
                number=number,
                caller_id=caller_id,
                caller_number=number_norm,
                caller_name=caller_name,
                channel="phone",
                request_type=request_type,
                category=category,
                status="in_progress",
                summary=summary[:MAX_SUMMARY],
                owner_seat=seat,
                owner_employee=clip(facts.answered_by_employee, 32),
                responded_at=facts.answered_at,
                flags=[],
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            await s.flush()
            if call is None:
                s.add(
                    Call(
                        call_id=call_id,
                        caller_number=number_norm,
                        caller_name=caller_name,
                        caller_id=caller_id,
                        queue=clip(facts.queue, 64),
                        ivr_choice=clip(facts.ivr_digit, 32),
                        category=clip(facts.category, 32),
                        started_at=facts.started_at or facts.answered_at,
                        answered_at=facts.answered_at,
                        answered_by_seat=seat,
                        incident_id=row.id,
                    )
                )
            else:
                call.incident_id = row.id
                if call.caller_id is None:
                    call.caller_id = caller_id
            s.add(
                _history(
                    row.id,
                    at=now,
                    actor=seat,
                    action="create",
                    to_status="in_progress",
                    detail={
                        "channel": "phone",
                        "call_id": call_id,
                        "ivr_digit": facts.ivr_digit,
                        "ivr_category": facts.category,
                    },
                )
            )
            await s.flush()
            view = incident_view(row)
        log.info("incident_created", number=view.number, call_id=call_id, seat=seat)
        return view

    async def create(
        self,
        *,
        actor: str,
        summary: str,
        request_type: str = "fault",
        channel: str = "phone",
        description: str | None = None,
        category: str | None = None,
        impact: str | None = None,
        urgency: str | None = None,
        caller_id: int | None = None,
        caller_number: str | None = None,
        caller_name: str | None = None,
        owner_seat: str | None = None,
        owner_employee: str | None = None,
    ) -> IncidentView:
        """A manual incident (web self-service, email, monitoring, or an agent by hand):
        `assigned` when it has an owner seat, else `new`."""
        who = _actor(actor)
        text_summary = line_field("summary", summary, MAX_SUMMARY, required=True)
        text_desc = block_field("description", description, MAX_DESCRIPTION)
        if channel not in CHANNELS:
            raise InvalidInputError(f"channel must be one of {', '.join(CHANNELS)}")
        if request_type not in REQUEST_TYPES:
            raise InvalidInputError(f"request_type must be one of {', '.join(REQUEST_TYPES)}")
        if category not in (None, "") and category not in CATEGORIES:
            raise InvalidInputError(f"category must be one of {', '.join(CATEGORIES)}")
        if owner_seat is not None and owner_seat not in self._rules.seats:
            raise InvalidInputError(f"unknown seat {owner_seat!r}")
        if (impact is None) != (urgency is None):
            raise InvalidInputError("give both impact and urgency, or neither")
        for field, level in (("impact", impact), ("urgency", urgency)):
            if level is not None and level not in LEVELS:
                raise InvalidInputError(f"{field} must be one of {', '.join(LEVELS)}")
        status: Status = "assigned" if owner_seat else "new"
        now = self._clock.utcnow()
        async with write_unit(self._sessions) as s:
            number_norm: str | None = None
            name = clip(caller_name, 128)
            if caller_id is not None:
                caller = await s.get(Caller, caller_id)
                if caller is None:
                    raise NotFoundError(f"no caller {caller_id}")
                name = name or caller.name
                if caller_number:
                    norm = normalize_phone(caller_number, self._plan)
                    number_norm = norm.number if norm else clip(caller_number, 64)
            elif caller_number:
                number_norm, caller_id, matched = await self._identify(s, caller_number, name)
                name = matched
            number = await self._next_number(s, now)
            row = Incident(
                number=number,
                caller_id=caller_id,
                caller_number=number_norm,
                caller_name=name,
                channel=channel,
                request_type=request_type,
                category=category or None,
                status=status,
                summary=text_summary,
                description=text_desc,
                owner_seat=owner_seat,
                owner_employee=clip(owner_employee, 32),
                flags=[],
                created_at=now,
                updated_at=now,
            )
            if impact is not None and urgency is not None:
                state = _state(row, None, version=1)
                t = transition(
                    state,
                    Prioritize(impact=impact, urgency=urgency),
                    actor=who,
                    at=now,
                    rules=self._rules,
                )
                _store_state(row, t.state)
            s.add(row)
            await s.flush()
            s.add(
                _history(
                    row.id,
                    at=now,
                    actor=who,
                    action="create",
                    to_status=status,
                    detail={"channel": channel, "priority": row.priority},
                )
            )
            await s.flush()
            view = incident_view(row)
        log.info("incident_created", number=view.number, channel=channel, actor=who)
        return view

    async def _identify(
        self, s: AsyncSession, raw_number: str | None, cid_name: str | None
    ) -> tuple[str | None, int | None, str | None]:
        """(number to store, caller id if exactly one caller has it, name to show)."""
        norm = normalize_phone(raw_number or "", self._plan)
        number = norm.number if norm else clip(raw_number, 64)
        name = clip(cid_name, 128)
        if norm is None:
            return number, None, name
        ids = await caller_ids_for(s, norm.number)
        if len(ids) != 1:
            return number, None, name  # unknown, or shared: the agent picks on the screen-pop
        caller = await s.get(Caller, ids[0])
        return number, ids[0], caller.name if caller else name

    # ----------------------------------------------------------------------- reading

    async def get(self, number: str) -> IncidentView | None:
        parsed = self.parse_number(number)
        if parsed is None:
            return None
        async with self._sessions() as s:
            row = await s.scalar(select(Incident).where(Incident.number == parsed))
            return incident_view(row) if row else None

    async def history(self, number: str) -> list[HistoryView]:
        """What happened to the incident, oldest first."""
        parsed = self.parse_number(number)
        if parsed is None:
            return []
        async with self._sessions() as s:
            rows = await s.execute(
                select(IncidentHistory)
                .join(Incident, Incident.id == IncidentHistory.incident_id)
                .where(Incident.number == parsed)
                .order_by(IncidentHistory.id)
            )
            return [history_view(h) for h in rows.scalars()]

    async def list_open(
        self,
        *,
        owner_seat: str | None = None,
        owner_group: str | None = None,
        statuses: Iterable[str] | None = None,
        limit: int = 200,
    ) -> list[IncidentView]:
        """Incidents not resolved or closed (or in `statuses`), newest first."""
        wanted = sorted(set(statuses) if statuses is not None else OPEN_STATUSES)
        query = select(Incident).where(Incident.status.in_(wanted))
        if owner_seat is not None:
            query = query.where(Incident.owner_seat == owner_seat)
        if owner_group is not None:
            query = query.where(Incident.owner_group == owner_group)
        query = query.order_by(Incident.created_at.desc(), Incident.id.desc()).limit(
            max(1, min(limit, 1000))
        )
        async with self._sessions() as s:
            return [incident_view(r) for r in (await s.execute(query)).scalars()]

    async def for_caller(self, caller_id: int, limit: int = 10) -> list[IncidentView]:
        """The caller's incidents, newest first (the screen-pop shows open and recent ones)."""
        async with self._sessions() as s:
            rows = await s.execute(
                select(Incident)
                .where(Incident.caller_id == caller_id)
                .order_by(Incident.created_at.desc(), Incident.id.desc())
                .limit(max(1, min(limit, 200)))
            )
            return [incident_view(r) for r in rows.scalars()]

    async def incident_for_call(self, call_id: str) -> IncidentView | None:
        async with self._sessions() as s:
            row = await s.scalar(
                select(Incident)
                .join(Call, Call.incident_id == Incident.id)
                .where(Call.call_id == call_id)
            )
            return incident_view(row) if row else None

    async def stored_answer(self, call_id: str) -> tuple[datetime, str] | None:
        """When and by which seat a call was answered, as stored (None if not stored)."""
        async with self._sessions() as s:
            row = (
                await s.execute(
                    select(Call.answered_at, Call.answered_by_seat).where(Call.call_id == call_id)
                )
            ).first()
        if row is None or row[0] is None or row[1] is None:
            return None
        return _aware(row[0]), str(row[1])

    async def status_for_ivr(self, entered: str) -> tuple[str, str | None] | None:
        """(status, owner seat) for the IVR's status lookup; digits (`202611220001`) or the full
        number; None when there is no such incident."""
        view = await self.get(entered)
        return None if view is None else (view.status, view.owner_seat)

    # ----------------------------------------------------------------------- lifecycle

    async def apply(
        self,
        number: str,
        action: str | Action,
        actor: str,
        *,
        expected_version: int | None = None,
        **args: object,
    ) -> ApplyResult:
        """Run one lifecycle step on the incident: history row, mails and the new state in one
        transaction. `expected_version` is the version the agent was looking at: if someone
        changed the incident since, `ConflictError` (nothing is overwritten silently)."""
        if isinstance(action, str):
            act = parse_action(action, args)
        elif args:
            raise InvalidInputError("give arguments inside the action object")
        else:
            act = action
        who = _actor(actor)
        parsed = self.parse_number(number)
        if parsed is None:
            raise NotFoundError(f"no incident {one_line(number)[:40]!r}")
        mails: list[str] = []
        async with write_unit(self._sessions) as s:
            row = await s.scalar(select(Incident).where(Incident.number == parsed))
            if row is None:
                raise NotFoundError(f"no incident {parsed}")
            if expected_version is not None and row.version != expected_version:
                raise await self._conflict(s, row)
            caller = None
            if row.caller_id is not None:
                found = await s.get(Caller, row.caller_id)
                caller = (await caller_views(s, [found]))[0] if found else None
            state = _state(row, caller.email if caller else None, version=row.version)
            now = self._clock.utcnow()
            t = transition(state, act, actor=who, at=now, rules=self._rules)
            if t.entry is None:
                return ApplyResult(incident=incident_view(row), entry=None)
            _store_state(row, t.state)
            row.updated_at = now
            try:
                await s.flush()
            except StaleDataError:
                # Another transaction updated the row between our read and our UPDATE.
                raise ConflictError(
                    f"{parsed} was changed by someone else just now; reload it and try again"
                ) from None
            history = _history(
                row.id,
                at=now,
                actor=who,
                action=t.entry.action,
                from_status=t.entry.from_status,
                to_status=t.entry.to_status,
                detail=dict(t.entry.detail),
            )
            s.add(history)
            view = incident_view(row)
            transfer: TransferLiveCall | None = None
            for notice in t.notices:
                if isinstance(notice, TransferLiveCall):
                    transfer = notice
                    continue
                mail, send_at = self._render(notice, view, caller, now)
                if await enqueue_mail(
                    s,
                    self._clock,
                    dedupe_key=notice.dedupe_key,
                    to=notice.to,
                    subject=mail.subject,
                    text=mail.text,
                ):
                    mails.append(notice.dedupe_key)
                    if send_at is not None:
                        # enqueue_mail has no "not before": hold the row until then.
                        await s.flush()
                        await s.execute(
                            update(MailOutbox)
                            .where(MailOutbox.dedupe_key == notice.dedupe_key)
                            .values(next_attempt_at=send_at)
                        )
            await s.flush()
            entry = history_view(history)
        log.info(
            "incident_changed",
            number=parsed,
            action=act.name,
            actor=who,
            status=view.status,
            mails=len(mails),
        )
        return ApplyResult(incident=view, entry=entry, mails=tuple(mails), transfer=transfer)

    async def describe(
        self,
        number: str,
        actor: str,
        *,
        summary: str,
        description: str | None,
        caller_id: int | None = None,
        caller_name: str | None = None,
        expected_version: int | None = None,
    ) -> IncidentView:
        """Edit what the incident says (the desktop's form): summary, description and which caller
        it is about. Not a lifecycle step, but history records it like one."""
        who = _actor(actor)
        text_summary = line_field("summary", summary, MAX_SUMMARY, required=True)
        text_desc = block_field("description", description, MAX_DESCRIPTION)
        parsed = self.parse_number(number)
        if parsed is None:
            raise NotFoundError(f"no incident {one_line(number)[:40]!r}")
        async with write_unit(self._sessions) as s:
            row = await s.scalar(select(Incident).where(Incident.number == parsed))
            if row is None:
                raise NotFoundError(f"no incident {parsed}")
            if expected_version is not None and row.version != expected_version:
                raise await self._conflict(s, row)
            changed = {}
            if row.summary != text_summary:
                changed["summary"] = text_summary
            if (row.description or None) != (text_desc or None):
                changed["description"] = "(edited)"
            if caller_id is not None and row.caller_id != caller_id:
                if await s.get(Caller, caller_id) is None:
                    raise InvalidInputError(f"no caller {caller_id}")
                changed["caller_id"] = str(caller_id)
            if caller_name and row.caller_name != caller_name:
                changed["caller_name"] = one_line(caller_name)[:128]
            if not changed:
                return incident_view(row)
            now = self._clock.utcnow()
            row.summary = text_summary or row.summary
            row.description = text_desc or None
            if caller_id is not None:
                row.caller_id = caller_id
            if caller_name:
                row.caller_name = one_line(caller_name)[:128]
            row.updated_at = now
            try:
                await s.flush()
            except StaleDataError:
                raise ConflictError(
                    f"{parsed} was changed by someone else just now; reload it and try again"
                ) from None
            s.add(
                _history(
                    row.id,
                    at=now,
                    actor=who,
                    action="describe",
                    from_status=row.status,
                    to_status=row.status,
                    detail=changed,
                )
            )
            await s.flush()
            view = incident_view(row)
        log.info("incident_described", number=parsed, actor=who, fields=sorted(changed))
        return view

    async def _conflict(self, s: AsyncSession, row: Incident) -> ConflictError:
        last = await s.scalar(
            select(IncidentHistory)
            .where(IncidentHistory.incident_id == row.id)
            .order_by(IncidentHistory.id.desc())
            .limit(1)
        )
        by = ""
        if last is not None:
            by = f" by {last.actor} ({last.action} at {last.at.astimezone(self._tz):%H:%M:%S})"
        return ConflictError(
            f"{row.number} was changed{by} since you opened it; reload it and try again",
            current_version=row.version,
        )

    def _render(
        self,
        notice: DispatchMail | ResolvedMail | SatisfactionMail | EscalationMail,
        view: IncidentView,
        caller: CallerView | None,
        now: datetime,
    ) -> tuple[Mail, datetime | None]:
        match notice:
            case DispatchMail():
                expires = now + self._dispatch_ttl
                token = sign(
                    self._secret,
                    LinkClaims(
                        purpose="dispatch",
                        number=view.number,
                        expires_at=expires,
                        group=notice.group,
                        assignee=notice.assignee_email,
                    ),
                )
                url = self._public_url + DISPATCH_LINK_PATH.format(token=token)
                mail = dispatch_mail(
                    notice,
                    view,
                    caller,
                    accept_url=f"{url}?decision=accept",
                    reject_url=f"{url}?decision=reject",
                    expires_at=expires,
                    site=self._site,
                )
                return mail, None
            case ResolvedMail():
                return resolved_mail(notice, view, caller, site=self._site), None
            case SatisfactionMail():
                expires = notice.send_at + self._survey_ttl
                token = sign(
                    self._secret,
                    LinkClaims(purpose="survey", number=view.number, expires_at=expires),
                )
                url = self._public_url + SURVEY_LINK_PATH.format(token=token)
                mail = satisfaction_mail(
                    notice, view, caller, survey_url=url, expires_at=expires, site=self._site
                )
                return mail, notice.send_at
            case EscalationMail():
                return escalation_mail(notice, view, caller, site=self._site), None
            case _:  # pragma: no cover
                assert_never(notice)

    # ----------------------------------------------------------------------- signed links

    def verify_link(self, token: str, purpose: Literal["dispatch", "survey"]) -> LinkClaims:
        """The claims of a genuine, unexpired link (`TokenError`/`TokenExpiredError` otherwise)."""
        return verify(self._secret, token, purpose, self._clock.utcnow())

    async def respond_to_dispatch(
        self, token: str, decision: Literal["accept", "reject"], reason: str | None = None
    ) -> ApplyResult:
        """Accept or reject through the link in the dispatch mail; only while the incident is
        still waiting for the group the link was sent to."""
        claims = self.verify_link(token, "dispatch")
        current = await self.get(claims.number)
        if current is None:
            raise NotFoundError(f"no incident {claims.number}")
        if current.status != "dispatched" or current.owner_group != claims.group:
            raise TransitionError(
                f"cannot {decision} {claims.number}: it is no longer waiting for {claims.group} "
                f"(it is {current.status})"
            )
        actor = claims.assignee or f"group:{claims.group}"
        act: Action
        if decision == "accept":
            act = Accept()
        elif decision == "reject":
            act = Reject(reason=reason or "")
        else:
            raise InvalidInputError("decision must be accept or reject")
        return await self.apply(claims.number, act, actor, expected_version=current.version)

    async def record_rating(
        self, token: str, score: int, comment: str | None = None
    ) -> IncidentView:
        """The caller's satisfaction through the survey link (once per incident)."""
        claims = self.verify_link(token, "survey")
        result = await self.apply(claims.number, Rate(score=score, comment=comment), "caller")
        return result.incident

    # ----------------------------------------------------------------------- callbacks

    async def add_callback(
        self, number: str, reason: str, call_id: str | None = None
    ) -> CallbackView:
        """Promise to call `number` back. One open callback per number: asking again returns
        the one already on the list."""
        if reason not in CALLBACK_REASONS:
            raise InvalidInputError(f"reason must be one of {', '.join(CALLBACK_REASONS)}")
        norm = normalize_phone(number, self._plan)
        if norm is None:
            raise InvalidInputError(f"{one_line(number)[:40]!r} is not a phone number to call back")
        now = self._clock.utcnow()
        async with write_unit(self._sessions, lock=f"callback:{norm.number}") as s:
            existing = await s.scalar(
                select(Callback)
                .where(
                    Callback.caller_number == norm.number,
                    Callback.status.in_(CALLBACK_ACTIVE),
                )
                .order_by(Callback.id)
                .limit(1)
            )
            if existing is not None:
                log.info("callback_deduplicated", callback_id=existing.id, reason=reason)
                return callback_view(existing)
            ids = await caller_ids_for(s, norm.number)
            row = Callback(
                caller_number=norm.number,
                caller_id=ids[0] if len(ids) == 1 else None,
                reason=reason,
                call_id=clip(call_id, 64),
                requested_at=now,
                status="open",
                attempts=0,
                updated_at=now,
            )
            s.add(row)
            await s.flush()
            view = callback_view(row)
        log.info("callback_added", callback_id=view.id, reason=reason, call_id=view.call_id)
        return view

    async def list_callbacks(
        self, status: str | Iterable[str] | None = CALLBACK_ACTIVE, limit: int = 200
    ) -> list[CallbackView]:
        """Callbacks in `status` (default: open and in progress; None: all), oldest first."""
        query = select(Callback)
        if isinstance(status, str):
            query = query.where(Callback.status == status)
        elif status is not None:
            query = query.where(Callback.status.in_(list(status)))
        query = query.order_by(Callback.requested_at, Callback.id).limit(max(1, min(limit, 1000)))
        async with self._sessions() as s:
            return [callback_view(c) for c in (await s.execute(query)).scalars()]

    async def start_callback(self, callback_id: int, worked_by: str) -> CallbackView:
        """An agent starts calling back: open → in_progress, one more attempt."""
        who = clip(worked_by, 32)
        if who is None:
            raise InvalidInputError("worked_by is required")
        async with write_unit(self._sessions) as s:
            row = await s.get(Callback, callback_id)
            if row is None:
                raise NotFoundError(f"no callback {callback_id}")
            if row.status == "in_progress":
                raise ConflictError(f"callback {callback_id} is being worked by {row.worked_by}")
            if row.status != "open":
                raise TransitionError(f"cannot start callback {callback_id}: it is {row.status}")
            row.status = "in_progress"
            row.attempts += 1
            row.worked_by = who
            row.updated_at = self._clock.utcnow()
            await s.flush()
            return callback_view(row)

    async def finish_callback(
        self,
        callback_id: int,
        outcome: str,
        *,
        worked_by: str | None = None,
        incident_number: str | None = None,
    ) -> CallbackView:
        """Record how the call-back went: reached/not_needed → done, wrong_number → failed,
        no_answer → open again (failed after `max_callback_attempts`)."""
        nxt = CALLBACK_OUTCOMES.get(outcome)
        if nxt is None:
            raise InvalidInputError(f"outcome must be one of {', '.join(CALLBACK_OUTCOMES)}")
        async with write_unit(self._sessions) as s:
            row = await s.get(Callback, callback_id)
            if row is None:
                raise NotFoundError(f"no callback {callback_id}")
            if row.status not in CALLBACK_ACTIVE:
                raise TransitionError(f"cannot finish callback {callback_id}: it is {row.status}")
            if nxt == "open" and row.attempts >= self._max_callback_attempts:
                nxt = "failed"
            if incident_number is not None:
                parsed = self.parse_number(incident_number)
                inc_id = await s.scalar(select(Incident.id).where(Incident.number == parsed))
                if inc_id is None:
                    raise NotFoundError(f"no incident {one_line(incident_number)[:40]!r}")
                row.incident_id = inc_id
            row.status = nxt
            row.outcome = outcome
            if worked_by:
                row.worked_by = clip(worked_by, 32)
            row.updated_at = self._clock.utcnow()
            await s.flush()
            return callback_view(row)

    async def add_callback_for(
        self, number: str, reason: str, call_id: str | None = None
    ) -> CallbackView:
        """`add_callback`, and the reason and call are kept with the callback even when the
        number already had an open one (a capped call after an abandoned one keeps both).
        Calling it again with the same reason and call adds nothing."""
        view = await self.add_callback(number, reason, call_id)
        call = clip(call_id, 64)
        async with write_unit(self._sessions, lock=f"callback:{view.caller_number}") as s:
            known = await s.scalar(
                select(CallbackCall.id).where(
                    CallbackCall.callback_id == view.id,
                    CallbackCall.reason == reason,
                    CallbackCall.call_id.is_(None)
                    if call is None
                    else CallbackCall.call_id == call,
                )
            )
            if known is None:
                s.add(
                    CallbackCall(
                        callback_id=view.id,
                        reason=reason,
                        call_id=call,
                        added_at=self._clock.utcnow(),
                    )
                )
        return view

    async def callback_reasons(self, callback_id: int) -> list[tuple[str, str | None]]:
        """Every (reason, call id) that fed a callback, oldest first."""
        query = (
            select(CallbackCall.reason, CallbackCall.call_id)
            .where(CallbackCall.callback_id == callback_id)
            .order_by(CallbackCall.added_at, CallbackCall.id)
        )
        async with self._sessions() as s:
            return [(reason, call) for reason, call in await s.execute(query)]

    async def close_callbacks_got_through(self, number: str, call_id: str) -> list[int]:
        """The caller got through on call `call_id`: the number's open callbacks are done
        (outcome `caller_got_through`), each with an audit line. One being worked by an agent
        right now is left to that agent. Returns the ids closed."""
        norm = normalize_phone(number, self._plan)
        if norm is None:
            return []
        now = self._clock.utcnow()
        closed: list[int] = []
        async with write_unit(self._sessions, lock=f"callback:{norm.number}") as s:
            rows = (
                await s.scalars(
                    select(Callback).where(
                        Callback.caller_number == norm.number, Callback.status == "open"
                    )
                )
            ).all()
            for row in rows:
                row.status = "done"
                row.outcome = CALLBACK_GOT_THROUGH
                row.updated_at = now
                closed.append(row.id)
                s.add(
                    AuditLog(
                        at=now,
                        actor="system",
                        action="callback_closed",
                        target=f"callback {row.id}",
                        detail={
                            "outcome": CALLBACK_GOT_THROUGH,
                            "call_id": clip(call_id, 64),
                            "number": norm.number,
                        },
                    )
                )
        for cid in closed:
            log.info("callback_closed_got_through", callback_id=cid, call_id=call_id)
        return closed

    # ----------------------------------------------------------------------- call facts

    async def record_call(self, rec: CallRecordIn) -> None:
        """Store a call's facts and its ring attempts; writing the same call again replaces them
        (the incident link made by `create_from_call` is kept)."""
        call_id = clip(rec.call_id, 64)
        if call_id is None:
            raise InvalidInputError("call_id is required")
        for dt in (rec.started_at, rec.queued_at, rec.answered_at, rec.ended_at):
            if dt is not None:
                _aware(dt)
        async with write_unit(self._sessions, lock=f"call:{call_id}") as s:
            number, caller_id, name = await self._identify(s, rec.caller_number, rec.caller_name)
            row = await s.scalar(select(Call).where(Call.call_id == call_id))
            if row is None:
                row = Call(call_id=call_id)
                s.add(row)
            row.caller_number = number
            row.caller_name = name
            row.caller_id = caller_id if caller_id is not None else row.caller_id
            row.queue = clip(rec.queue, 64)
            row.ivr_choice = clip(rec.ivr_choice, 32)
            row.category = clip(rec.category, 32)
            row.started_at = rec.started_at
            row.queued_at = rec.queued_at
            row.answered_at = rec.answered_at
            row.ended_at = rec.ended_at
            row.answered_by_seat = clip(rec.answered_by_seat, 64)
            row.answer_ring = rec.answer_ring
            row.within_rings = rec.within_rings
            row.outcome = clip(rec.outcome, 32)
            row.talk_s = rec.talk_s
            row.capped = rec.capped
            row.transferred_to = clip(rec.transferred_to, 64)
            await s.flush()
            await s.execute(delete(RingAttempt).where(RingAttempt.call_id == call_id))
            for ring in rec.ring_attempts:
                seat = clip(ring.seat_id, 64)
                if seat is None:
                    continue
                s.add(
                    RingAttempt(
                        call_id=call_id,
                        seat_id=seat,
                        started_at=_aware(ring.started_at),
                        ended_at=_aware(ring.ended_at) if ring.ended_at else None,
                        outcome=clip(ring.outcome, 32),
                        ring_s=ring.ring_s,
                        talk_s=ring.talk_s,
                    )
                )


# --------------------------------------------------------------------------- row ⇄ state


def _state(row: Incident, caller_email: str | None, *, version: int) -> IncidentState:
    status: Status = next((st for st in STATUSES if st == row.status), "in_progress")
    return IncidentState(
        number=row.number,
        status=status,
        request_type=row.request_type,  # type: ignore[arg-type]
        category=row.category,  # type: ignore[arg-type]
        impact=row.impact,  # type: ignore[arg-type]
        urgency=row.urgency,  # type: ignore[arg-type]
        priority=row.priority,
        owner_seat=row.owner_seat,
        owner_employee=row.owner_employee,
        owner_group=row.owner_group,
        created_at=row.created_at,
        sla_response_due=row.sla_response_due,
        sla_resolve_due=row.sla_resolve_due,
        responded_at=row.responded_at,
        resolved_at=row.resolved_at,
        closed_at=row.closed_at,
        flags=tuple(row.flags or ()),
        satisfaction=row.satisfaction,
        satisfaction_comment=row.satisfaction_comment,
        caller_email=caller_email,
        version=version,
    )


def _store_state(row: Incident, st: IncidentState) -> None:
    row.status = st.status
    row.request_type = st.request_type
    row.category = st.category
    row.impact = st.impact
    row.urgency = st.urgency
    row.priority = st.priority
    row.owner_seat = st.owner_seat
    row.owner_employee = st.owner_employee
    row.owner_group = st.owner_group
    row.sla_response_due = st.sla_response_due
    row.sla_resolve_due = st.sla_resolve_due
    row.responded_at = st.responded_at
    row.resolved_at = st.resolved_at
    row.closed_at = st.closed_at
    if list(row.flags or ()) != list(st.flags):
        row.flags = list(st.flags)
    row.satisfaction = st.satisfaction
    row.satisfaction_comment = st.satisfaction_comment


def _history(
    incident_id: int,
    *,
    at: datetime,
    actor: str,
    action: str,
    to_status: str | None,
    from_status: str | None = None,
    detail: dict[str, Any] | None = None,
) -> IncidentHistory:
    return IncidentHistory(
        incident_id=incident_id,
        at=at,
        actor=actor[:_ACTOR_MAX],
        action=action,
        from_status=from_status,
        to_status=to_status,
        detail={k: v for k, v in (detail or {}).items() if v is not None},
    )


def _actor(actor: str) -> str:
    who = clip(actor, _ACTOR_MAX)
    if who is None:
        raise InvalidInputError("actor is required")
    return who


def _aware(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidInputError(f"{dt.isoformat()} has no time zone")
    return dt
