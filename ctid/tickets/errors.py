"""Errors raised by ctid.tickets beyond `TransitionError`: bad input, unknown records, a lost
optimistic-lock race, and a bad or expired signed link (each under a `ctid.core.errors` category)."""

from __future__ import annotations

from ctid.core.errors import (
    LinkExpiredError,
    PermissionRefusedError,
    RecordMissingError,
    RequestRefusedError,
    StateConflictError,
)


class InvalidInputError(RequestRefusedError):
    """A value given to the directory or the incident store is not acceptable (unknown category,
    unknown seat, text too long, score out of range...). The message names the field."""


class TicketNotFoundError(RecordMissingError):
    """No incident, caller or callback with that key."""


class NotAllowedError(PermissionRefusedError):
    """The person may not do that (an agent at an ordinary seat writing a knowledge article)."""


class VersionConflictError(StateConflictError):
    """Someone else changed the incident since it was read (optimistic `version` check)."""

    def __init__(self, message: str, *, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


class TokenError(RequestRefusedError):
    """A signed link (dispatch accept/reject, satisfaction survey) is malformed or tampered with."""


class TokenExpiredError(TokenError, LinkExpiredError):
    """A signed link was genuine but is past its expiry."""
