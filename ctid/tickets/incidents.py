"""The incident store: numbering, creation from calls, lifecycle steps with history and mail, signed
links. Over 700 lines: creation and the lifecycle share the row/state conversions and numbering."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, assert_never
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from ctid.config import Config
from ctid.core.clock import Clock
from ctid.core.errors import TransitionError
from ctid.db.schema import (
    Call,
    Caller,
    Incident,
    IncidentHistory,
    MailOutbox,
    next_incident_seq,
)
from ctid.i18n import translator
from ctid.mail import enqueue_mail
from ctid.tickets._db import (
    ACTOR_MAX,
    Identity,
    aware,
    caller_views,
    history_row,
    history_values,
    history_view,
    identify_caller,
    identify_callers,
    incident_state,
    incident_view,
    store_state,
    write_unit,
)
from ctid.tickets.actions import (
    Accept,
    Action,
    Flag,
    Prioritize,
    Rate,
    Reject,
    parse_action,
)
from ctid.tickets.directory import phone_plan
from ctid.tickets.errors import InvalidInputError, TicketNotFoundError, VersionConflictError
from ctid.tickets.facts import CallFacts
from ctid.tickets.incident_list import IncidentList
from ctid.tickets.lifecycle import (
    DispatchMail,
    EscalationMail,
    HistoryEntry,
    ResolvedMail,
    Rules,
    SatisfactionMail,
    TransferLiveCall,
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
from ctid.tickets.numbers import IncidentNumbers
from ctid.tickets.phones import normalize_phone
from ctid.tickets.text import block_field, clip, line_field, one_line
from ctid.tickets.tokens import LinkClaims, check_secret, sign, verify
from ctid.tickets.views import (
    ApplyResult,
    CallerView,
    HistoryView,
    IncidentView,
)
from ctid.tickets.vocabulary import (
    CATEGORIES,
    CHANNELS,
    LEVELS,
    OPEN_STATUSES,
    REQUEST_TYPES,
    Status,
)

log = structlog.get_logger(__name__)

DISPATCH_LINK_PATH = "/incidents/respond/{token}"
"""Accept/reject page for a dispatched incident (`?decision=accept|reject`). The page must act on
POST only: mail scanners open every link in a message."""
SURVEY_LINK_PATH = "/survey/{token}"
"""Satisfaction survey page (POST score 1-5 and a comment)."""

MAX_SUMMARY = 500
MAX_DESCRIPTION = 20_000


class IncidentStore:
    """Incidents in the database. One transaction per method call."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        cfg: Config,
        *,
        link_secret: bytes,
        dispatch_link_ttl_s: int = 7 * 86400,
        survey_link_ttl_s: int = 14 * 86400,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._rules = Rules.from_config(cfg)
        self._tz = ZoneInfo(cfg.site.timezone)
        self._site = Site(cfg.site.name, self._tz, translator(cfg.site.language, cfg.site.timezone))
        self._prefix = cfg.incidents.number_prefix
        self._plan = phone_plan(cfg.site)
        self._public_url = cfg.web.public_url.rstrip("/")
        self._secret = check_secret(link_secret)
        self._dispatch_ttl = timedelta(seconds=dispatch_link_ttl_s)
        self._survey_ttl = timedelta(seconds=survey_link_ttl_s)
        self._ivr = {o.digit: o for o in cfg.ivr.options if o.action == "queue"}
        self._numbers = IncidentNumbers(self._prefix)
        self.listing = IncidentList(sessions, self._numbers.parse)
        """The open-incident list a page at a time (columns only, keyset-paged)."""

    @property
    def rules(self) -> Rules:
        return self._rules

    # ----------------------------------------------------------------------- numbers

    def parse_number(self, entered: str) -> str | None:
        """`INC-20261122-0001` (any case) or the digits `202611220001` → the incident number."""
        return self._numbers.parse(entered)

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
        aware(facts.answered_at)
        async with write_unit(self._sessions, lock=f"call:{call_id}") as s:
            call = await s.scalar(select(Call).where(Call.call_id == call_id))
            if call is not None and call.incident_id is not None:
                existing = await s.get(Incident, call.incident_id)
                if existing is not None:
                    return incident_view(existing)
            identity = await identify_caller(s, self._plan, facts.caller_number, facts.caller_name)
            number_norm, caller_id, caller_name = identity
            now = self._clock.utcnow()
            row = Incident(
                **self._call_incident(facts, seat, identity, await self._next_number(s, now), now)
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
            s.add(IncidentHistory(**_created(row.id, facts, call_id, seat, now)))
            await s.flush()
            view = incident_view(row)
        log.info("incident_created", number=view.number, call_id=call_id, seat=seat)
        return view

    def _call_incident(
        self, facts: CallFacts, seat: str, identity: Identity, number: str, now: datetime
    ) -> dict[str, Any]:
        """The columns of the incident opened for an answered call."""
        number_norm, caller_id, caller_name = identity
        option = self._ivr.get(facts.ivr_digit or "")
        # The IVR's CTID_CATEGORY is its option's request type when the digit is unknown.
        request_type = option.request_type if option else "fault"
        if option is None and facts.category in REQUEST_TYPES:
            request_type = facts.category
        category = facts.category if facts.category in CATEGORIES else None
        who = caller_name or number_norm or "unknown caller"
        summary = f"Phone call from {who}" + (f" ({option.label})" if option else "")
        return dict(
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

    async def create_from_calls(
        self, s: AsyncSession, calls: Sequence[CallFacts], *, flag: str | None = None
    ) -> dict[str, IncidentView]:
        """`create_from_call` for many calls with no incident yet (distinct ids), inside the
        caller's transaction, in a few statements; each gets `flag` too (as the lifecycle's
        `flag` step would set it, with its history row). The caller links the call rows."""
        todo: list[tuple[str, str, CallFacts]] = []
        for facts in calls:
            call_id = clip(facts.call_id, 64)
            seat = clip(facts.answered_by_seat, 64)
            if call_id is None or seat is None:
                raise InvalidInputError("call_id and answered_by_seat are required")
            aware(facts.answered_at)
            todo.append((call_id, seat, facts))
        if not todo:
            return {}
        now = self._clock.utcnow()
        day = now.astimezone(self._tz).date()
        first = await next_incident_seq(s, day, len(todo))
        who = await identify_callers(
            s, self._plan, ((f.caller_number, f.caller_name) for _, _, f in todo)
        )
        values = [
            self._call_incident(f, seat, identity, f"{self._prefix}-{day:%Y%m%d}-{seq:04d}", now)
            for seq, (_, seat, f), identity in zip(
                range(first, first + len(todo)), todo, who, strict=True
            )
        ]
        flagged: list[HistoryEntry | None] = []
        for v in values:
            entry = None
            if flag is not None:
                t = transition(
                    incident_state(Incident(**v), None, version=1),
                    Flag(flag=flag),
                    actor="system",
                    at=now,
                    rules=self._rules,
                )
                v["flags"], entry = list(t.state.flags), t.entry
            flagged.append(entry)
        # Core inserts (executemany): the ORM would insert row by row to read each id back.
        await s.execute(insert(Incident).execution_options(render_nulls=True), values)
        numbers = [v["number"] for v in values]
        rows = {
            row.number: row
            for row in await s.scalars(select(Incident).where(Incident.number.in_(numbers)))
        }
        history: list[dict[str, Any]] = []
        views: dict[str, IncidentView] = {}
        for v, entry, (call_id, seat, facts) in zip(values, flagged, todo, strict=True):
            row = rows[v["number"]]
            views[call_id] = incident_view(row)
            history.append(_created(row.id, facts, call_id, seat, now))
            if entry is not None:
                history.append(
                    history_values(
                        row.id,
                        at=now,
                        actor="system",
                        action=entry.action,
                        from_status=entry.from_status,
                        to_status=entry.to_status,
                        detail=dict(entry.detail),
                    )
                )
        await s.execute(insert(IncidentHistory).execution_options(render_nulls=True), history)
        for call_id, view in views.items():
            log.info("incident_created", number=view.number, call_id=call_id, seat=view.owner_seat)
        return views

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
                    raise TicketNotFoundError(f"no caller {caller_id}")
                name = name or caller.name
                if caller_number:
                    norm = normalize_phone(caller_number, self._plan)
                    number_norm = norm.number if norm else clip(caller_number, 64)
            elif caller_number:
                number_norm, caller_id, matched = await identify_caller(
                    s, self._plan, caller_number, name
                )
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
                state = incident_state(row, None, version=1)
                t = transition(
                    state,
                    Prioritize(impact=impact, urgency=urgency),
                    actor=who,
                    at=now,
                    rules=self._rules,
                )
                store_state(row, t.state)
            s.add(row)
            await s.flush()
            s.add(
                history_row(
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
        return aware(row[0]), str(row[1])

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
        changed the incident since, `VersionConflictError` (nothing is overwritten silently)."""
        if isinstance(action, str):
            act = parse_action(action, args)
        elif args:
            raise InvalidInputError("give arguments inside the action object")
        else:
            act = action
        who = _actor(actor)
        parsed = self.parse_number(number)
        if parsed is None:
            raise TicketNotFoundError(f"no incident {one_line(number)[:40]!r}")
        mails: list[str] = []
        async with write_unit(self._sessions) as s:
            row = await s.scalar(select(Incident).where(Incident.number == parsed))
            if row is None:
                raise TicketNotFoundError(f"no incident {parsed}")
            if expected_version is not None and row.version != expected_version:
                raise await self._conflict(s, row)
            caller = None
            if row.caller_id is not None:
                found = await s.get(Caller, row.caller_id)
                caller = (await caller_views(s, [found]))[0] if found else None
            state = incident_state(row, caller.email if caller else None, version=row.version)
            now = self._clock.utcnow()
            t = transition(state, act, actor=who, at=now, rules=self._rules)
            if t.entry is None:
                return ApplyResult(incident=incident_view(row), entry=None)
            store_state(row, t.state)
            row.updated_at = now
            try:
                await s.flush()
            except StaleDataError:
                # Another transaction updated the row between our read and our UPDATE.
                raise VersionConflictError(
                    f"{parsed} was changed by someone else just now; reload it and try again"
                ) from None
            history = history_row(
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
            raise TicketNotFoundError(f"no incident {one_line(number)[:40]!r}")
        async with write_unit(self._sessions) as s:
            row = await s.scalar(select(Incident).where(Incident.number == parsed))
            if row is None:
                raise TicketNotFoundError(f"no incident {parsed}")
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
                raise VersionConflictError(
                    f"{parsed} was changed by someone else just now; reload it and try again"
                ) from None
            s.add(
                history_row(
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

    async def _conflict(self, s: AsyncSession, row: Incident) -> VersionConflictError:
        last = await s.scalar(
            select(IncidentHistory)
            .where(IncidentHistory.incident_id == row.id)
            .order_by(IncidentHistory.id.desc())
            .limit(1)
        )
        by = ""
        if last is not None:
            by = f" by {last.actor} ({last.action} at {last.at.astimezone(self._tz):%H:%M:%S})"
        return VersionConflictError(
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
            raise TicketNotFoundError(f"no incident {claims.number}")
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


def _created(
    incident_id: int, facts: CallFacts, call_id: str, seat: str, now: datetime
) -> dict[str, Any]:
    """The history row of an incident opened for a call."""
    return history_values(
        incident_id,
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


def _actor(actor: str) -> str:
    who = clip(actor, ACTOR_MAX)
    if who is None:
        raise InvalidInputError("actor is required")
    return who
