"""The words of the service desk that layers below the features need too (config's IVR options,
the call effects): request types and callback reasons. `ctid.tickets.vocabulary` builds on them."""

from __future__ import annotations

from typing import Literal, get_args

RequestType = Literal["fault", "service_request", "consultation", "new_requirement", "complaint"]
REQUEST_TYPES: tuple[RequestType, ...] = get_args(RequestType)

CallbackReason = Literal["abandoned", "missed", "after_hours", "capped"]
CALLBACK_REASONS: tuple[CallbackReason, ...] = get_args(CallbackReason)


def N_(message: str) -> str:
    """Marks a word for the catalogs (core stays stdlib-only, so not `ctid.i18n.N_`); pages and
    mails translate it where they show it."""
    return message


REQUEST_TYPE_WORDS: dict[str, str] = {
    "fault": N_("Fault"),
    "service_request": N_("Service request"),
    "consultation": N_("Consultation"),
    "new_requirement": N_("New requirement"),
    "complaint": N_("Complaint"),
}
CALLBACK_REASON_WORDS: dict[str, str] = {
    "abandoned": N_("Hung up while waiting"),
    "missed": N_("Missed call"),
    "after_hours": N_("Called after hours"),
    "capped": N_("Call cut at the talk cap"),
}
