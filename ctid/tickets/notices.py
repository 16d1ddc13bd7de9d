"""The text of the mails the incident lifecycle implies (pure): dispatch to a second-line group
in professional terms, resolution and satisfaction survey to the caller, escalation to the duty
manager. Plain text only, so caller-supplied text can never become markup."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime, tzinfo

from ctid.tickets.lifecycle import (
    DispatchMail,
    EscalationMail,
    ResolvedMail,
    SatisfactionMail,
)
from ctid.tickets.views import (
    CallerView,
    IncidentView,
)

_LABELS = {
    "fault": "Fault",
    "service_request": "Service request",
    "consultation": "Consultation",
    "new_requirement": "New requirement",
    "complaint": "Complaint",
    "software": "Software",
    "hardware": "Hardware",
    "network": "Network",
    "database": "Database",
    "business_application": "Business application",
    "other": "Other",
}


@dataclass(frozen=True, slots=True)
class Mail:
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class Site:
    """How mails are signed and where times are shown."""

    name: str
    tz: tzinfo


def _when(dt: datetime | None, site: Site) -> str:
    return "-" if dt is None else f"{dt.astimezone(site.tz):%Y-%m-%d %H:%M}"


def _label(value: str | None) -> str:
    return "-" if not value else _LABELS.get(value, value)


def _indent(text: str | None) -> str:
    if not text:
        return "    (none)"
    return textwrap.indent(text, "    ")


def _subject(number: str, rest: str) -> str:
    return f"[{number}] {rest}"[:400]


def _signature(site: Site) -> str:
    return f"-- \n{site.name}"


def _caller_lines(incident: IncidentView, caller: CallerView | None) -> list[str]:
    name = caller.name if caller else (incident.caller_name or "unknown")
    who = name
    if caller and caller.employee_id:
        who += f" (employee id {caller.employee_id})"
    if caller and caller.vip:
        who += " - VIP"
    phones = ", ".join(p.raw for p in caller.phones) if caller and caller.phones else None
    lines = [f"Caller:        {who}"]
    if caller and caller.department:
        lines.append(f"Department:    {caller.department}")
    if caller and caller.office_location:
        lines.append(f"Location:      {caller.office_location}")
    lines.append(f"Phone:         {phones or incident.caller_number or '-'}")
    if caller and caller.email:
        lines.append(f"Email:         {caller.email}")
    return lines


def _sla_line(incident: IncidentView, site: Site) -> str:
    if not incident.priority:
        return "Priority:      not set yet"
    return (
        f"Priority:      {incident.priority} (respond by {_when(incident.sla_response_due, site)}, "
        f"resolve by {_when(incident.sla_resolve_due, site)})"
    )


def dispatch_mail(
    notice: DispatchMail,
    incident: IncidentView,
    caller: CallerView | None,
    *,
    accept_url: str,
    reject_url: str,
    expires_at: datetime,
    site: Site,
) -> Mail:
    greeting = f"Dear {notice.group} team," if not notice.assignee_email else "Hello,"
    lines = [
        greeting,
        "",
        f"The IT service desk has dispatched incident {incident.number} to "
        f"{notice.group}. Please accept it, or reject it with a reason, using the links below.",
        "",
        f"Incident:      {incident.number}",
        _sla_line(incident, site),
        f"Request type:  {_label(incident.request_type)}",
        f"Category:      {_label(incident.category)}",
        f"Opened:        {_when(incident.created_at, site)} via {incident.channel}",
        f"Summary:       {incident.summary}",
        "",
        "Description:",
        _indent(incident.description),
        "",
        *_caller_lines(incident, caller),
    ]
    if notice.note:
        lines += ["", "Note from the service desk:", _indent(notice.note)]
    lines += [
        "",
        f"Accept: {accept_url}",
        f"Reject: {reject_url}",
        f"(These links are valid until {_when(expires_at, site)}.)",
        "",
        _signature(site),
    ]
    pri = incident.priority or "unprioritised"
    return Mail(
        _subject(incident.number, f"{pri} dispatched to {notice.group}: {incident.summary}"),
        "\n".join(lines),
    )


def resolved_mail(
    notice: ResolvedMail, incident: IncidentView, caller: CallerView | None, *, site: Site
) -> Mail:
    name = caller.name if caller else (incident.caller_name or "")
    lines = [
        f"Dear {name}," if name else "Hello,",
        "",
        f"Your incident {incident.number} ({incident.summary}) has been resolved.",
        "",
        "What was done:",
        _indent(notice.resolution),
        "",
        "If the problem is not solved, call the service desk and quote "
        f"{incident.number}: we will reopen it.",
        "",
        _signature(site),
    ]
    return Mail(_subject(incident.number, "your incident has been resolved"), "\n".join(lines))


def satisfaction_mail(
    notice: SatisfactionMail,
    incident: IncidentView,
    caller: CallerView | None,
    *,
    survey_url: str,
    expires_at: datetime,
    site: Site,
) -> Mail:
    name = caller.name if caller else (incident.caller_name or "")
    lines = [
        f"Dear {name}," if name else "Hello,",
        "",
        f"This is the service desk. Your incident {incident.number} ({incident.summary}) "
        "was closed. Do you have any comments or suggestions about our service?",
        "",
        f"Rate us (1 to 5) here: {survey_url}",
        f"(The link is valid until {_when(expires_at, site)}.)",
        "",
        _signature(site),
    ]
    return Mail(_subject(incident.number, "how did we do?"), "\n".join(lines))


def escalation_mail(
    notice: EscalationMail, incident: IncidentView, caller: CallerView | None, *, site: Site
) -> Mail:
    owner = incident.owner_group or incident.owner_seat or "nobody"
    lines = [
        f"Incident {incident.number} has been escalated.",
        "",
        "Reason:",
        _indent(notice.reason),
        "",
        f"Incident:      {incident.number}",
        _sla_line(incident, site),
        f"Owner:         {owner}",
        f"Opened:        {_when(incident.created_at, site)} via {incident.channel}",
        f"Summary:       {incident.summary}",
        *_caller_lines(incident, caller),
        "",
        _signature(site),
    ]
    return Mail(_subject(incident.number, f"escalated: {incident.summary}"), "\n".join(lines))
