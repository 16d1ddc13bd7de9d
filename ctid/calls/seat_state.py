"""The words of a seat's state as the desk sees it (ready, ringing, talking, wrap-up, paused with a
reason, logged out) and how ring counts and pause reasons are said, in every language."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from ctid.i18n import N_, Translator


class SeatState(StrEnum):
    READY = "ready"
    RINGING = "ringing"
    TALKING = "talking"
    WRAPUP = "wrapup"
    PAUSED = "paused"
    LOGGED_OUT = "logged_out"


STATE_WORDS: Final[dict[SeatState, str]] = {
    SeatState.READY: N_("Ready"),
    SeatState.RINGING: N_("Ringing"),
    SeatState.TALKING: N_("Talking"),
    SeatState.WRAPUP: N_("Wrap-up"),
    SeatState.PAUSED: N_("Paused"),
    SeatState.LOGGED_OUT: N_("Logged out"),
}

SYSTEM_PAUSE_REASONS: Final[dict[str, str]] = {
    "rna": N_("Missed calls"),
    "lunch": N_("Lunch rotation"),
    "closed": N_("Desk closed"),
    "wrapup": N_("Wrap-up"),
}
"""Pauses ctid makes itself; an agent cannot choose these, and only ctid or a supervisor ends
`rna`."""

AGENT_PAUSE_WORDS: Final[dict[str, str]] = {
    "break": N_("Break"),
    "meal": N_("Meal"),
    "training": N_("Training"),
    "admin": N_("Admin work"),
}
"""Words for the default agent pause reasons (config may add others, shown as typed)."""


def state_words(t: Translator, state: SeatState) -> str:
    return t.gettext(STATE_WORDS[state])


def pause_words(t: Translator, reason: str) -> str:
    """A pause reason in words: a known one translated, any other as ops wrote it."""
    known = SYSTEM_PAUSE_REASONS.get(reason) or AGENT_PAUSE_WORDS.get(reason)
    return t.gettext(known) if known else reason


def ring_words(t: Translator, ring: int, limit: int, seconds: float) -> str:
    """ "Ring 2 of 3 (7 s)": rings counted the same way on every screen."""
    return t.gettext("Ring {n} of {limit}", n=ring, limit=limit) + f" ({int(seconds)} s)"
