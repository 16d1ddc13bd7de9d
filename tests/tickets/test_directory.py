"""The callers directory: a messy CSV gives an exact report, re-imports upsert by employee id,
callers are matched by any spelling of their number, search, and audited edits."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.db.schema import AuditLog, Caller
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.errors import InvalidInputError, TicketNotFoundError
from ctid.tickets.views import (
    PhoneView,
    RowProblem,
)

MESSY = (
    "\ufeffName , Employee ID,Department,Office Location,Phones,VIP,E-mail,Remarks\r\n"
    "张三,E001,财务部,总部 3F,+86 138-0013-8000;010-12345678,是,zhangsan@example.com,\r\n"
    "李四,E002,IT,Building B,13900139000 / 8001,no,,\r\n"
    ",E003,HR,,13700137000,no,,\r\n"
    "王五,E004,HR,,not a phone,yes,,\r\n"
    "赵六,E001,Sales,,13600136000,1,,\r\n"
    "Alice Smith,E005,Sales,,+1 415 555 0100,maybe,,\r\n"
    '"Bob ""The Builder""",E006,Facilities,"Block C\r\nGround floor",13500135000;garbage,0,'
    "bob@example.com,\r\n"
    '"bad"quote,E007,,,13400134000,no,,\r\n'
    "钱七,E008,IT,,13300133000,否,not-an-email,\r\n"
    ",,,,,,,\r\n"
    "孙八,,IT,,13200132000,,,\r\n"
    "周九,E009,IT,,13100131000,no,,extra,cells\r\n"
)


async def test_messy_csv_exact_report(
    directory: CallerDirectory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    report = await directory.import_csv(MESSY, actor="ops1")
    assert (report.created, report.updated, report.unchanged) == (4, 0, 0)
    assert report.rejected == (
        RowProblem(4, "no name"),
        RowProblem(5, "no valid phone (got 'not a phone')"),
        RowProblem(6, "duplicate employee id E001 (first on line 2)"),
        RowProblem(7, "bad vip value 'maybe' (use yes/no/1/0/是/否)"),
        RowProblem(10, "CSV syntax: ',' expected after '\"'"),
        RowProblem(11, "email 'not-an-email' is not an email address"),
        RowProblem(14, "9 fields, the header has 8"),
    )
    assert report.warnings == (
        RowProblem(1, "column 'Remarks' ignored"),
        RowProblem(8, "phone 'garbage' is not a number; skipped"),
    )

    (zhang,) = await directory.match("13800138000")
    assert (zhang.name, zhang.employee_id, zhang.department, zhang.office_location) == (
        "张三",
        "E001",
        "财务部",
        "总部 3F",
    )
    assert zhang.vip is True and zhang.email == "zhangsan@example.com"
    assert zhang.phones == (
        PhoneView("+8613800138000", "+86 138-0013-8000", "mobile"),
        PhoneView("+861012345678", "010-12345678", "office"),
    )
    (li,) = await directory.match("8001")
    assert li.name == "李四" and {p.kind for p in li.phones} == {"mobile", "extension"}
    (bob,) = await directory.match("13500135000")
    assert bob.name == 'Bob "The Builder"' and bob.office_location == "Block C Ground floor"
    assert bob.vip is False
    (sun,) = await directory.match("13200132000")
    assert sun.employee_id is None
    assert await directory.match("13700137000") == []
    async with sessions() as s:
        audit = await s.scalar(select(AuditLog).where(AuditLog.action == "directory_import"))
        assert audit is not None and audit.actor == "ops1"
        assert audit.detail == {"created": 4, "updated": 0, "unchanged": 0, "rejected": 7}


@pytest.mark.parametrize(
    "spelling",
    [
        "13800138000",
        "+86 138-0013-8000",
        "008613800138000",
        "8613800138000",
        "+86 (138) 0013 8000",
        "+8613800138000",
    ],
)
async def test_match_by_any_spelling(directory: CallerDirectory, spelling: str) -> None:
    await directory.import_csv("name,phones\n张三,138 0013 8000\n")
    assert [c.name for c in await directory.match(spelling)] == ["张三"]


async def test_match_several_for_a_shared_number(directory: CallerDirectory) -> None:
    await directory.import_csv(
        "name,employee_id,phones,vip\n前台,E1,010-12345678,no\n总经理,E2,010 1234 5678 ext 8,yes\n"
    )
    names = [c.name for c in await directory.match("(010) 12345678")]
    assert names == ["总经理", "前台"]  # VIPs first
    assert await directory.match("garbage") == []
    assert await directory.match("13000000000") == []


async def test_reimport_upserts_by_employee_id(
    directory: CallerDirectory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    csv = "name,employee_id,department,phones,vip\n张三,E001,财务部,13800138000,no\n李四,E002,IT,13900139000,no\n"
    first = await directory.import_csv(csv)
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    again = await directory.import_csv(csv)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    moved = csv.replace("财务部,13800138000", "审计部,13800138001").replace(
        "IT,13900139000,no", "IT,13900139000,yes"
    )
    third = await directory.import_csv(moved)
    assert (third.created, third.updated, third.unchanged) == (0, 2, 0)
    (zhang,) = await directory.match("13800138001")
    assert zhang.department == "审计部"
    assert await directory.match("13800138000") == []
    (li,) = await directory.match("13900139000")
    assert li.vip is True
    async with sessions() as s:
        assert len((await s.execute(select(Caller))).scalars().all()) == 2


async def test_rows_without_employee_id_match_name_and_phone(directory: CallerDirectory) -> None:
    await directory.import_csv("name,phones,department\n孙八,13200132000,IT\n")
    report = await directory.import_csv("name,phones,department\n孙八,13200132000,HR\n")
    assert (report.created, report.updated) == (0, 1)
    other = await directory.import_csv("name,phones\n孙八二,13200132000\n")
    assert other.created == 1


async def test_gb18030_bytes_and_chinese_headers(directory: CallerDirectory) -> None:
    data = "姓名,工号,电话,邮箱\n张三,E001,13800138000,z@example.com\n".encode("gb18030")
    report = await directory.import_csv(data)
    assert (report.created, report.encoding) == (1, "gb18030")
    (z,) = await directory.match("13800138000")
    assert (z.name, z.employee_id, z.email) == ("张三", "E001", "z@example.com")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name,email\nx,y@example.com\n", RowProblem(1, "missing column(s): phones")),
        ("", RowProblem(1, "the file is empty (no header line)")),
        ('"name,phones\n', RowProblem(1, "CSV syntax: unexpected end of data")),
    ],
)
async def test_unusable_files(directory: CallerDirectory, text: str, problem: RowProblem) -> None:
    report = await directory.import_csv(text)
    assert report.rejected == (problem,)
    assert report.accepted == 0


async def test_search(directory: CallerDirectory) -> None:
    await directory.import_csv(MESSY)
    assert [c.name for c in await directory.search("张")] == ["张三"]
    assert [c.name for c in await directory.search("builder")] == ['Bob "The Builder"']
    assert [c.name for c in await directory.search("E002")] == ["李四"]
    assert [c.name for c in await directory.search("0013 8000")] == ["张三"]
    assert [c.name for c in await directory.search("+86 135-0013-5000")] == ['Bob "The Builder"']
    assert await directory.search("%") == []
    assert await directory.search("_") == []
    assert await directory.search("   ") == []


async def test_create_and_update_with_audit(
    directory: CallerDirectory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    c = await directory.create(name="Li Lei", actor="ops1", phones=["13900139000"])
    assert c.phones == (PhoneView("+8613900139000", "13900139000", "mobile"),)
    u = await directory.update(
        c.id,
        {"department": "网络部", "vip": "是", "phones": ["13900139000", "010-87654321"]},
        actor="E100",
    )
    assert (u.department, u.vip) == ("网络部", True)
    assert [p.number for p in u.phones] == ["+8613900139000", "+861087654321"]
    assert [x.id for x in await directory.match("87654321")] == [c.id]
    async with sessions() as s:
        audit = (
            await s.execute(select(AuditLog).where(AuditLog.action == "caller_updated"))
        ).scalar_one()
    assert audit.actor == "E100" and audit.target == f"caller:{c.id}"
    assert audit.detail == {
        "changed": {
            "department": [None, "网络部"],
            "vip": [False, True],
            "phones": [["+8613900139000"], ["+8613900139000", "+861087654321"]],
        }
    }
    with pytest.raises(InvalidInputError, match="cannot change"):
        await directory.update(c.id, {"id": 5}, actor="E100")
    with pytest.raises(InvalidInputError, match="not a phone number"):
        await directory.update(c.id, {"phones": ["call me maybe"]}, actor="E100")
    with pytest.raises(InvalidInputError, match="name is longer"):
        await directory.update(c.id, {"name": "x" * 200}, actor="E100")
    with pytest.raises(TicketNotFoundError):
        await directory.update(10**9, {"name": "x"}, actor="E100")
    stored = await directory.get(c.id)
    assert stored == u
