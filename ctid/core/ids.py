"""Typed identifiers used across ctid, so a seat id is never mistaken for a channel name."""

from __future__ import annotations

from typing import NewType

SeatId = NewType("SeatId", str)
"""A seat as configured (`seat1`)."""

EmployeeId = NewType("EmployeeId", str)
"""A staff member's unique employee ID (工号)."""

CallId = NewType("CallId", str)
"""A call: the first Asterisk `Linkedid` ctid saw for it."""

Channel = NewType("Channel", str)
"""An Asterisk channel name (`PJSIP/seat1-00000001`)."""

UniqueId = NewType("UniqueId", str)
"""An Asterisk channel `Uniqueid`."""

QueueName = NewType("QueueName", str)
"""An Asterisk queue name."""

IncidentNumber = NewType("IncidentNumber", str)
"""An incident number like `INC-20261122-0001`."""
