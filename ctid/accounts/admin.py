"""Listing web users and switching their login off and on (`ctid users list | disable | enable`);
disabling ends every session they have, so a leaver is out at once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.accounts.users import UnknownUserError
from ctid.core.clock import Clock, SystemClock
from ctid.db.schema import AuditLog, User, WebSession


@dataclass(frozen=True)
class UserRow:
    employee_id: str
    name: str
    role: str
    email: str
    active: bool
    can_log_in: bool


async def list_users(sessions: async_sessionmaker[AsyncSession]) -> list[UserRow]:
    async with sessions() as db:
        users = (await db.execute(select(User).order_by(User.employee_id))).scalars().all()
    return [
        UserRow(
            u.employee_id,
            u.name,
            u.role,
            u.email or "",
            u.active,
            u.active and bool(u.password_hash),
        )
        for u in users
    ]


async def set_active(
    sessions: async_sessionmaker[AsyncSession],
    employee_id: str,
    active: bool,
    *,
    clock: Clock | None = None,
    actor: str = "cli",
) -> bool:
    """Enable or disable a user; returns False when it already was so (nothing written)."""
    now = (clock or SystemClock()).utcnow()
    async with sessions() as db, db.begin():
        user = (
            await db.execute(select(User).where(User.employee_id == employee_id))
        ).scalar_one_or_none()
        if user is None:
            raise UnknownUserError(f"no user with employee ID {employee_id}")
        if user.active == active:
            return False
        user.active = active
        user.updated_at = now
        if not active:
            await db.execute(delete(WebSession).where(WebSession.user_id == user.id))
        db.add(
            AuditLog(
                at=now,
                actor=actor,
                action="user_enabled" if active else "user_disabled",
                target=employee_id,
            )
        )
    return True
