"""What the incident, caller, knowledge-base and incident-report pages share: the request's
translator (one call site), vocabulary in words, who may write articles, and the JSON shapes of
articles, notes and timeline entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web

from ctid.config import Config
from ctid.core.actor import Actor
from ctid.i18n import N_, Translator
from ctid.tickets.kb import ArticleVersionView, ArticleView, Author, may_write_articles
from ctid.tickets.timeline import TimelineEntry
from ctid.tickets.vocabulary import (
    CATEGORY_WORDS,
    LEVEL_WORDS,
    REQUEST_TYPE_WORDS,
    STATUS_WORDS,
)
from ctid.web.edge import HttpError
from ctid.web.lang import request_translator
from ctid.web.record_ports import RecordPorts

P = TypeVar("P")
LANGUAGE_WORDS = {"zh": N_("Chinese"), "en": N_("English")}
OUTCOME_WORDS = {
    "answered": N_("Answered"),
    "abandoned_in_queue": N_("Caller hung up in the queue"),
    "abandoned_in_ivr": N_("Caller hung up in the menu"),
    "closed_hours": N_("Outside service hours"),
    "callback_requested": N_("Callback requested"),
    "unanswered_timeout": N_("Not answered in time"),
    "lost_during_resync": N_("Lost while ctid was reconnecting"),
}


def words_of(request: web.Request, cfg: Config) -> Translator:
    """The request's language (swap for `middleware.translator_of(request)` once it exists)."""
    return request_translator(request, cfg)


def vocab(t: Translator, kind: str, value: str | None) -> str:
    """A vocabulary code in words: `status`, `request_type`, `category`, `level`, `language`,
    a call's `outcome`."""
    if not value:
        return ""
    table = {
        "status": STATUS_WORDS,
        "request_type": REQUEST_TYPE_WORDS,
        "category": CATEGORY_WORDS,
        "level": LEVEL_WORDS,
        "language": LANGUAGE_WORDS,
        "outcome": OUTCOME_WORDS,
    }[kind]
    known = table.get(value)
    return t.gettext(known) if known else value.replace("_", " ")


def expert_seats(cfg: Config) -> frozenset[str]:
    return frozenset(s.id for s in cfg.seats if s.tier == "expert")


def author_of(actor: Actor, cfg: Config) -> Author:
    """The actor as a knowledge-base author (expert: sits at an expert seat now)."""
    return Author(actor.employee_id, actor.role, expert=actor.seat_id in expert_seats(cfg))


def may_write(actor: Actor, cfg: Config) -> bool:
    a = author_of(actor, cfg)
    return may_write_articles(a.role, expert=a.expert)


def need_port(port: P | None, what: str) -> P:
    if port is None:
        raise HttpError(404, f"{what} is not available")
    return port


def ports_or_empty(records: RecordPorts | None) -> RecordPorts:
    return records if records is not None else RecordPorts()


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def article_json(a: ArticleView) -> dict[str, Any]:
    return {
        "id": a.id,
        "title": a.title,
        "symptoms": a.symptoms,
        "steps": a.steps,
        "category": a.category,
        "request_type": a.request_type,
        "tags": list(a.tags),
        "language": a.language,
        "status": a.status,
        "version": a.version,
        "created_by": a.created_by,
        "created_at": iso(a.created_at),
        "updated_by": a.updated_by,
        "updated_at": iso(a.updated_at),
    }


def version_json(v: ArticleVersionView) -> dict[str, Any]:
    return {
        "version": v.version,
        "title": v.title,
        "symptoms": v.symptoms,
        "steps": v.steps,
        "category": v.category,
        "request_type": v.request_type,
        "tags": list(v.tags),
        "language": v.language,
        "status": v.status,
        "author": v.author,
        "created_at": iso(v.created_at),
    }


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def entry_json(e: TimelineEntry) -> dict[str, Any]:
    return {
        "at": iso(e.at),
        "kind": e.kind,
        "what": e.what,
        "actor": e.actor,
        "text": e.text,
        "detail": _plain(e.detail),
    }
