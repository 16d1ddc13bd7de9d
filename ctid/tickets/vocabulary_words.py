"""The tickets' vocabulary in words people read (marked for translation): statuses, request types,
categories and levels. Translate where shown: `t.gettext(STATUS_WORDS[status])`."""

from __future__ import annotations

from typing import Final

from ctid.i18n import N_

STATUS_WORDS: Final[dict[str, str]] = {
    "new": N_("New"),
    "assigned": N_("Assigned"),
    "in_progress": N_("In progress"),
    "handed_to_expert": N_("With an expert"),
    "escalated": N_("Escalated"),
    "dispatched": N_("Dispatched"),
    "accepted": N_("Accepted by second line"),
    "rejected": N_("Rejected by second line"),
    "suspended": N_("Suspended"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
    "reopened": N_("Reopened"),
}
REQUEST_TYPE_WORDS: Final[dict[str, str]] = {
    "fault": N_("Fault"),
    "service_request": N_("Service request"),
    "consultation": N_("Consultation"),
    "new_requirement": N_("New requirement"),
    "complaint": N_("Complaint"),
}
CATEGORY_WORDS: Final[dict[str, str]] = {
    "software": N_("Software"),
    "hardware": N_("Hardware"),
    "network": N_("Network"),
    "database": N_("Database"),
    "business_application": N_("Business application"),
    "other": N_("Other"),
}
LEVEL_WORDS: Final[dict[str, str]] = {
    "high": N_("High"),
    "medium": N_("Medium"),
    "low": N_("Low"),
}
