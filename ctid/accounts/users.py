"""Web users: Argon2id password hashing (off the event loop) and the functions the CLI calls to add
a user and set a password (`ctid users add/passwd`)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import cast

import structlog
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.core.actor import ROLES, Role
from ctid.core.clock import Clock, SystemClock
from ctid.core.errors import CtidError
from ctid.db.schema import AuditLog, User, WebSession

log = structlog.get_logger(__name__)

PASSWORD_MIN = 8
PASSWORD_MAX = 1024
_EMPLOYEE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")


class UserError(CtidError):
    """A user could not be added or changed (the message says why)."""


class UserExistsError(UserError):
    pass


class UnknownUserError(UserError):
    pass


class WeakPasswordError(UserError):
    pass


def make_hasher(
    *, time_cost: int = 3, memory_cost_kib: int = 65536, parallelism: int = 4
) -> PasswordHasher:
    """Argon2id with RFC 9106's second recommended profile by default (64 MiB, t=3)."""
    return PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory_cost_kib,
        parallelism=parallelism,
        type=Type.ID,
    )


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    employee_id: str
    name: str
    role: Role
    active: bool


def check_employee_id(employee_id: str) -> str:
    if not _EMPLOYEE_ID.match(employee_id):
        raise UserError("employee ID must be 1-32 letters, digits, '.', '_' or '-'")
    return employee_id


def check_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise WeakPasswordError(f"password must be at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise WeakPasswordError(f"password must be at most {PASSWORD_MAX} characters")
    return password


async def hash_password(hasher: PasswordHasher, password: str) -> str:
    # Argon2 costs tens of milliseconds of CPU: never on the loop that pushes screen-pops.
    return await asyncio.to_thread(hasher.hash, password)


async def verify_password(hasher: PasswordHasher, stored: str, password: str) -> bool:
    def _verify() -> bool:
        try:
            return hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_verify)


async def add_user(
    sessions: async_sessionmaker[AsyncSession],
    employee_id: str,
    name: str,
    role: str,
    password: str | None,
    *,
    email: str | None = None,
    clock: Clock | None = None,
    hasher: PasswordHasher | None = None,
    actor: str = "cli",
) -> UserInfo:
    """Create a user; `password` None creates one that cannot log in until `set_password`."""
    check_employee_id(employee_id)
    name = name.strip()
    if not name or len(name) > 128:
        raise UserError("name must be 1-128 characters")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    hashed = None
    if password is not None:
        hashed = await hash_password(hasher or make_hasher(), check_password(password))
    now = (clock or SystemClock()).utcnow()
    user = User(
        employee_id=employee_id,
        name=name,
        role=role,
        password_hash=hashed,
        email=email,
        active=True,
        created_at=now,
        updated_at=now,
    )
    try:
        async with sessions() as db, db.begin():
            db.add(user)
            await db.flush()
            db.add(
                AuditLog(
                    at=now,
                    actor=actor,
                    action="user_added",
                    target=employee_id,
                    detail={"role": role},
                )
            )
    except IntegrityError:
        raise UserExistsError(f"employee ID {employee_id} already has a user") from None
    log.info("user_added", employee_id=employee_id, role=role)
    return UserInfo(user.id, employee_id, name, role, True)


async def set_password(
    sessions: async_sessionmaker[AsyncSession],
    employee_id: str,
    password: str,
    *,
    clock: Clock | None = None,
    hasher: PasswordHasher | None = None,
    actor: str = "cli",
) -> None:
    """Set a user's password and end every session they have (a changed password logs out)."""
    hashed = await hash_password(hasher or make_hasher(), check_password(password))
    now = (clock or SystemClock()).utcnow()
    async with sessions() as db, db.begin():
        user = (
            await db.execute(select(User).where(User.employee_id == employee_id))
        ).scalar_one_or_none()
        if user is None:
            raise UnknownUserError(f"no user with employee ID {employee_id}")
        user.password_hash = hashed
        user.updated_at = now
        await db.execute(delete(WebSession).where(WebSession.user_id == user.id))
        db.add(AuditLog(at=now, actor=actor, action="password_set", target=employee_id))
    log.info("password_set", employee_id=employee_id)


async def get_user(sessions: async_sessionmaker[AsyncSession], employee_id: str) -> UserInfo | None:
    async with sessions() as db:
        user = (
            await db.execute(select(User).where(User.employee_id == employee_id))
        ).scalar_one_or_none()
        if user is None:
            return None
        return UserInfo(user.id, user.employee_id, user.name, cast(Role, user.role), user.active)
