"""The one error hierarchy of ctid: every error ctid raises on purpose is a `CtidError`."""

from __future__ import annotations


class CtidError(Exception):
    """Base of every error ctid raises on purpose."""


class ConfigError(CtidError):
    """The configuration is invalid; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class StoreError(CtidError):
    """The database could not be used (unreachable, not migrated, constraint broken)."""


class NotMigratedError(StoreError):
    """The database schema is older than this version of ctid."""


class AmiError(CtidError):
    """An AMI action failed or the link is down."""


class AmiActionError(AmiError):
    """Asterisk answered `Response: Error` to an action."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message


class AmiTimeoutError(AmiError):
    """An AMI action got no answer within its timeout."""


class AmiDisconnectedError(AmiError):
    """The AMI link dropped (or was down) while the action was in flight; it is never replayed."""


class UnsafeValueError(CtidError):
    """A value that would break a wire protocol (CR/LF in an AMI header, say) was refused."""


class TransitionError(CtidError):
    """An incident lifecycle step that is not allowed from the current state."""


class RequestRefusedError(CtidError, ValueError):
    """A feature's public service refused a request as given (a bad value, a broken rule); the
    message is meant for the person who asked (the web answers HTTP 400)."""


class RecordMissingError(CtidError, LookupError):
    """The record a request names does not exist (the web answers HTTP 404)."""


class PermissionRefusedError(CtidError, PermissionError):
    """The person asking may not do this (their role or seat does not allow it)."""


class StateConflictError(CtidError):
    """The request clashes with the current state, e.g. the record moved on (HTTP 409)."""


class LinkExpiredError(RequestRefusedError):
    """A signed link is genuine but past its expiry (the web answers HTTP 410)."""
