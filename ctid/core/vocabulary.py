"""The words of the service desk that layers below the features need too (config's IVR options,
the call effects): request types and callback reasons. `ctid.tickets.vocabulary` builds on them."""

from __future__ import annotations

from typing import Literal, get_args

RequestType = Literal["fault", "service_request", "consultation", "new_requirement", "complaint"]
REQUEST_TYPES: tuple[RequestType, ...] = get_args(RequestType)

CallbackReason = Literal["abandoned", "missed", "after_hours", "capped"]
CALLBACK_REASONS: tuple[CallbackReason, ...] = get_args(CallbackReason)
