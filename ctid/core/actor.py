"""`Actor`: the signed-in person a request acts for, and the `Role`s a person can hold; shared by
the accounts, the features' public services and the web."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal["agent", "supervisor", "ops"]
ROLES: tuple[Role, ...] = get_args(Role)


@dataclass(frozen=True, slots=True)
class Actor:
    """The logged-in person a request acts for (`seat_id`: the seat they staff, if any)."""

    employee_id: str
    name: str
    role: Role
    seat_id: str | None
