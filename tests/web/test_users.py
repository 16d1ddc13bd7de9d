"""The user functions the CLI calls (`ctid users add/passwd/list/disable/enable`) and the HTML
escaping helper."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from ctid.accounts.admin import list_users, set_active
from ctid.accounts.users import (
    UnknownUserError,
    UserError,
    UserExistsError,
    WeakPasswordError,
    add_user,
    get_user,
    make_hasher,
    set_password,
)
from ctid.config import WebConfig
from ctid.core.clock import FakeClock
from ctid.db.schema import AuditLog, User
from ctid.web.html import Markup, esc, render, tag
from ctid.web.server import resolve_web_secret

from .conftest import PASSWORD, Client, Env


async def test_add_user_stores_an_argon2id_hash(env: Env, hasher: PasswordHasher) -> None:
    info = await add_user(env.sessions, "E2001", "Sun Li", "agent", "s3cret-pass", hasher=hasher)
    assert (info.employee_id, info.role, info.active) == ("E2001", "agent", True)
    async with env.sessions() as db:
        user = (await db.execute(select(User).where(User.employee_id == "E2001"))).scalar_one()
        audit = list(
            (await db.execute(select(AuditLog).where(AuditLog.action == "user_added"))).scalars()
        )
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert "s3cret-pass" not in user.password_hash
    assert "E2001" in [a.target for a in audit]
    assert await get_user(env.sessions, "E2001") == info


@pytest.mark.parametrize(
    ("employee_id", "role", "password", "error"),
    [
        ("E1001", "agent", PASSWORD, UserExistsError),
        ("E 1", "agent", PASSWORD, UserError),
        ("E2002", "boss", PASSWORD, UserError),
        ("E2003", "agent", "short", WeakPasswordError),
    ],
)
async def test_add_user_refuses_bad_input(
    env: Env, hasher: PasswordHasher, employee_id: str, role: str, password: str, error: type
) -> None:
    with pytest.raises(error):
        await add_user(env.sessions, employee_id, "Someone", role, password, hasher=hasher)


async def test_set_password_changes_it_and_ends_existing_sessions(
    env: Env, clients: Callable[[], Client], hasher: PasswordHasher, clock: FakeClock
) -> None:
    c = clients()
    await c.login("E1001")
    await set_password(env.sessions, "E1001", "a brand new one", hasher=hasher, clock=clock)
    async with await c.get("/api/me") as me:
        assert me.status == 401  # the old session is gone
    assert (await clients().login("E1001", PASSWORD)).status == 401
    assert (await clients().login("E1001", "a brand new one")).status == 303
    with pytest.raises(UnknownUserError):
        await set_password(env.sessions, "E9999", "whatever123", hasher=hasher)


async def test_disabling_a_user_ends_their_sessions_and_enabling_lets_them_back(
    env: Env, clients: Callable[[], Client], clock: FakeClock
) -> None:
    c = clients()
    await c.login("E1001")
    assert await set_active(env.sessions, "E1001", False, clock=clock, actor="E0001")
    async with await c.get("/api/me") as me:
        assert me.status == 401  # out at once
    assert (await clients().login("E1001", PASSWORD)).status == 401
    assert not await set_active(env.sessions, "E1001", False, clock=clock)  # already so
    row = next(u for u in await list_users(env.sessions) if u.employee_id == "E1001")
    assert (row.active, row.can_log_in) == (False, False)

    assert await set_active(env.sessions, "E1001", True, clock=clock)
    assert (await clients().login("E1001", PASSWORD)).status == 303
    row = next(u for u in await list_users(env.sessions) if u.employee_id == "E1001")
    assert (row.name, row.active, row.can_log_in) == ("Li Wei", True, True)
    async with env.sessions() as db:
        audit = (
            await db.execute(
                select(AuditLog.action, AuditLog.actor)
                .where(AuditLog.target == "E1001", AuditLog.action.like("user_%abled"))
                .order_by(AuditLog.id)
            )
        ).all()
    assert [tuple(a) for a in audit] == [("user_disabled", "E0001"), ("user_enabled", "cli")]
    with pytest.raises(UnknownUserError):
        await set_active(env.sessions, "E9999", False)


async def test_a_user_without_a_password_cannot_log_in(
    env: Env, clients: Callable[[], Client], hasher: PasswordHasher
) -> None:
    await add_user(env.sessions, "E2009", "No Pass", "agent", None, hasher=hasher)
    assert (await clients().login("E2009", "")).status == 400
    assert (await clients().login("E2009", "anything at all")).status == 401


def test_default_hasher_is_argon2id_with_rfc9106_costs() -> None:
    h = make_hasher()
    assert (h.time_cost, h.memory_cost, h.parallelism) == (3, 65536, 4)
    assert h.type.name == "ID"


def test_web_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = resolve_web_secret(WebConfig(), tmp_path)
    assert len(first) >= 32
    assert (tmp_path / "web_secret").stat().st_mode & 0o777 == 0o600
    assert resolve_web_secret(WebConfig(), tmp_path) == first
    assert resolve_web_secret(WebConfig(cookie_secret="x" * 20), tmp_path) == b"x" * 20


def test_html_helper_escapes_everything_but_markup() -> None:
    assert esc('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert esc(Markup("<b>ok</b>")) == "<b>ok</b>"
    assert render('<p title="$t">$body</p>', t='"><script>', body="<i>") == (
        '<p title="&quot;&gt;&lt;script&gt;">&lt;i&gt;</p>'
    )
    assert (
        tag("td", "<x>", class_='a"b', data_id=3)
        == '<td class="a&quot;b" data-id="3">&lt;x&gt;</td>'
    )
    assert tag("input", name="q", required=True, hidden=False) == '<input name="q" required>'


def test_templates_keep_string_template_syntax() -> None:
    """`render` fills with `str.format_map` behind `string.Template`'s syntax: literal braces
    (CSS, scripts) stay as written, `$$` is a dollar, `${name}` works beside letters."""
    assert (
        render("a{b}c {{d}} $$5 ${x}y $x", x="<&>") == "a{b}c {{d}} $5 &lt;&amp;&gt;y &lt;&amp;&gt;"
    )
    assert render("<style>p{margin:0}</style>$v", v=Markup("<i>")) == (
        "<style>p{margin:0}</style><i>"
    )
    with pytest.raises(KeyError):
        render("$missing", other=1)
    with pytest.raises(ValueError, match="invalid placeholder"):
        render("costs $ 5")
