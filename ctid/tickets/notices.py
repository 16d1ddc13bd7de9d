"""The text of the mails the incident lifecycle implies (pure): dispatch to a second-line group,
resolution and satisfaction survey to the caller, escalation to the duty manager;
all plain text in the site's language."""

from __future__ import annotations

import textwrap
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from ctid.i18n import N_, Translator, translator
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
from ctid.tickets.vocabulary import CATEGORY_WORDS, CHANNEL_WORDS, REQUEST_TYPE_WORDS

_LABELS = {**REQUEST_TYPE_WORDS, **CATEGORY_WORDS, **CHANNEL_WORDS}


# A mail is plain text only (no HTML part), so caller-supplied text can never become markup.
@dataclass(frozen=True, slots=True)
class Mail:
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class Site:
    """How mails are signed, where times are shown and in which language they are written
    (the site's: neither callers nor second-line groups have a language of their own; the mails'
    words are in `locale/*/LC_MESSAGES/mail.po`)."""

    name: str
    tz: tzinfo
    t: Translator = field(default_factory=lambda: translator("en"))


def _when(dt: datetime | None, site: Site) -> str:
    return "-" if dt is None else f"{dt.astimezone(site.tz):%Y-%m-%d %H:%M}"


def _label(value: str | None, site: Site) -> str:
    return "-" if not value else site.t.gettext(_LABELS[value]) if value in _LABELS else value


def _indent(text: str | None, site: Site) -> str:
    if not text:
        return "    " + site.t.gettext("(none)")
    return textwrap.indent(text, "    ")


def _subject(number: str, rest: str) -> str:
    return f"[{number}] {rest}"[:400]


def _signature(site: Site) -> str:
    return f"-- \n{site.name}"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _line(site: Site, label: str, value: object) -> str:
    """`Label:  value`, the values lined up (CJK labels count two columns a character)."""
    head = site.t.gettext(label) + ":"
    return head + " " * max(1, 15 - _width(head)) + str(value)


def _caller_lines(incident: IncidentView, caller: CallerView | None, site: Site) -> list[str]:
    t = site.t
    name = caller.name if caller else (incident.caller_name or t.gettext("unknown"))
    who = name
    if caller and caller.employee_id:
        who += " " + t.gettext("(employee id {id})", id=caller.employee_id)
    if caller and caller.vip:
        who += " - VIP"
    phones = ", ".join(p.raw for p in caller.phones) if caller and caller.phones else None
    lines = [_line(site, N_("Caller"), who)]
    if caller and caller.department:
        lines.append(_line(site, N_("Department"), caller.department))
    if caller and caller.office_location:
        lines.append(_line(site, N_("Location"), caller.office_location))
    lines.append(_line(site, N_("Phone"), phones or incident.caller_number or "-"))
    if caller and caller.email:
        lines.append(_line(site, N_("Email"), caller.email))
    return lines


def _sla_line(incident: IncidentView, site: Site) -> str:
    if not incident.priority:
        return _line(site, N_("Priority"), site.t.gettext("not set yet"))
    return _line(
        site,
        N_("Priority"),
        site.t.gettext(
            "{priority} (respond by {respond}, resolve by {resolve})",
            priority=incident.priority,
            respond=_when(incident.sla_response_due, site),
            resolve=_when(incident.sla_resolve_due, site),
        ),
    )


def _opened(incident: IncidentView, site: Site) -> str:
    return _line(
        site,
        N_("Opened"),
        site.t.gettext(
            "{when} via {channel}",
            when=_when(incident.created_at, site),
            channel=_label(incident.channel, site),
        ),
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
    t = site.t
    greeting = (
        t.gettext("Dear {group} team,", group=notice.group)
        if not notice.assignee_email
        else t.gettext("Hello,")
    )
    lines = [
        greeting,
        "",
        t.gettext(
            "The IT service desk has dispatched incident {number} to {group}. Please accept it, "
            "or reject it with a reason, using the links below.",
            number=incident.number,
            group=notice.group,
        ),
        "",
        _line(site, N_("Incident"), incident.number),
        _sla_line(incident, site),
        _line(site, N_("Request type"), _label(incident.request_type, site)),
        _line(site, N_("Category"), _label(incident.category, site)),
        _opened(incident, site),
        _line(site, N_("Summary"), incident.summary),
        "",
        t.gettext("Description:"),
        _indent(incident.description, site),
        "",
        *_caller_lines(incident, caller, site),
    ]
    if notice.note:
        lines += ["", t.gettext("Note from the service desk:"), _indent(notice.note, site)]
    lines += [
        "",
        t.gettext("Accept: {url}", url=accept_url),
        t.gettext("Reject: {url}", url=reject_url),
        t.gettext("(These links are valid until {when}.)", when=_when(expires_at, site)),
        "",
        _signature(site),
    ]
    pri = incident.priority or t.gettext("unprioritised")
    return Mail(
        _subject(
            incident.number,
            t.gettext(
                "{priority} dispatched to {group}: {summary}",
                priority=pri,
                group=notice.group,
                summary=incident.summary,
            ),
        ),
        "\n".join(lines),
    )


def _dear(name: str, site: Site) -> str:
    return site.t.gettext("Dear {name},", name=name) if name else site.t.gettext("Hello,")


def resolved_mail(
    notice: ResolvedMail, incident: IncidentView, caller: CallerView | None, *, site: Site
) -> Mail:
    t = site.t
    name = caller.name if caller else (incident.caller_name or "")
    lines = [
        _dear(name, site),
        "",
        t.gettext(
            "Your incident {number} ({summary}) has been resolved.",
            number=incident.number,
            summary=incident.summary,
        ),
        "",
        t.gettext("What was done:"),
        _indent(notice.resolution, site),
        "",
        t.gettext(
            "If the problem is not solved, call the service desk and quote {number}: we will "
            "reopen it.",
            number=incident.number,
        ),
        "",
        _signature(site),
    ]
    return Mail(
        _subject(incident.number, t.gettext("your incident has been resolved")), "\n".join(lines)
    )


def satisfaction_mail(
    notice: SatisfactionMail,
    incident: IncidentView,
    caller: CallerView | None,
    *,
    survey_url: str,
    expires_at: datetime,
    site: Site,
) -> Mail:
    t = site.t
    name = caller.name if caller else (incident.caller_name or "")
    lines = [
        _dear(name, site),
        "",
        t.gettext(
            "This is the service desk. Your incident {number} ({summary}) was closed. Do you "
            "have any comments or suggestions about our service?",
            number=incident.number,
            summary=incident.summary,
        ),
        "",
        t.gettext("Rate us (1 to 5) here: {url}", url=survey_url),
        t.gettext("(The link is valid until {when}.)", when=_when(expires_at, site)),
        "",
        _signature(site),
    ]
    return Mail(_subject(incident.number, t.gettext("how did we do?")), "\n".join(lines))


def escalation_mail(
    notice: EscalationMail, incident: IncidentView, caller: CallerView | None, *, site: Site
) -> Mail:
    t = site.t
    owner = incident.owner_group or incident.owner_seat or t.gettext("nobody")
    lines = [
        t.gettext("Incident {number} has been escalated.", number=incident.number),
        "",
        t.gettext("Reason:"),
        _indent(notice.reason, site),
        "",
        _line(site, N_("Incident"), incident.number),
        _sla_line(incident, site),
        _line(site, N_("Owner"), owner),
        _opened(incident, site),
        _line(site, N_("Summary"), incident.summary),
        *_caller_lines(incident, caller, site),
        "",
        _signature(site),
    ]
    return Mail(
        _subject(incident.number, t.gettext("escalated: {summary}", summary=incident.summary)),
        "\n".join(lines),
    )
