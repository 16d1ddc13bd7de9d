"""The callers directory: CSV import (upsert by employee id, a report line for every refused row),
matching an incoming number to callers however it is spelled, search, and audited edits."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import phonenumbers
import structlog
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config, SiteConfig
from ctid.core.clock import Clock
from ctid.db.schema import AuditLog, Caller, CallerPhone
from ctid.tickets._db import caller_ids_for, caller_views, write_unit
from ctid.tickets.errors import InvalidInputError, TicketNotFoundError
from ctid.tickets.phones import PhonePlan, normalize_phone
from ctid.tickets.text import block_field, email_field, line_field, one_line
from ctid.tickets.views import (
    CallerView,
    ImportReport,
    RowProblem,
)

log = structlog.get_logger(__name__)

MAX_NAME = 128
MAX_EMPLOYEE_ID = 32
MAX_TEXT = 128
MAX_NOTES = 4000
MAX_PHONES = 10
MAX_IMPORT_CHARS = 20_000_000
_CHUNK = 500  # keeps IN (...) lists well under SQLite's bound-parameter limit

_PHONE_SPLIT = re.compile(r"[;/；、|\n]|，")
_VIP_TRUE = frozenset({"yes", "y", "true", "1", "是"})
_VIP_FALSE = frozenset({"no", "n", "false", "0", "否", ""})

# Header names, compared after lower-casing and removing spaces, `_` and `-`.
_HEADERS: dict[str, str] = {
    **dict.fromkeys(("name", "fullname", "姓名", "名字"), "name"),
    **dict.fromkeys(("employeeid", "empid", "employeeno", "staffid", "工号"), "employee_id"),
    **dict.fromkeys(("department", "dept", "部门"), "department"),
    **dict.fromkeys(
        ("officelocation", "office", "location", "办公地点", "地点"), "office_location"
    ),
    **dict.fromkeys(("phones", "phone", "telephone", "tel", "mobile", "电话", "手机"), "phones"),
    **dict.fromkeys(("vip", "isvip", "是否vip"), "vip"),
    **dict.fromkeys(("email", "mail", "emailaddress", "邮箱", "电子邮件"), "email"),
}
_REQUIRED = ("name", "phones")


def phone_plan(site: SiteConfig) -> PhonePlan:
    """The site's numbering plan from `[site]`."""
    return PhonePlan(site.country_code, site.area_code, site.internal_extension_digits)


def phone_kind(number: str) -> str:
    """office|mobile|extension|other for a normalised number."""
    if number.startswith("ext:"):
        return "extension"
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        return "other"
    if kind == phonenumbers.PhoneNumberType.MOBILE:
        return "mobile"
    if kind in (
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        return "office"
    return "other"


@dataclass(frozen=True, slots=True)
class _Phone:
    number: str
    raw: str
    kind: str


def parse_phones(text: str, plan: PhonePlan) -> tuple[list[_Phone], list[str]]:
    """Split a phones cell (`;`, `/`, `、`...) into normalised numbers; also returns the parts
    that are not numbers."""
    good: dict[str, _Phone] = {}
    bad: list[str] = []
    for part in _PHONE_SPLIT.split(text or ""):
        raw = one_line(part)
        if not raw:
            continue
        norm = normalize_phone(raw, plan)
        if norm is None:
            bad.append(raw[:40])
            continue
        good.setdefault(norm.number, _Phone(norm.number, raw[:64], phone_kind(norm.number)))
    return list(good.values()), bad


def parse_vip(value: object) -> bool | None:
    """yes/no/1/0/是/否 (and true/false); None when it is none of those."""
    if isinstance(value, bool):
        return value
    text = one_line(value).lower()
    if text in _VIP_TRUE:
        return True
    if text in _VIP_FALSE:
        return False
    return None


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    name: str
    employee_id: str | None
    department: str | None
    office_location: str | None
    email: str | None
    vip: bool
    phones: tuple[_Phone, ...]


def _decode(data: str | bytes) -> tuple[str, str]:
    if isinstance(data, bytes):
        try:
            text, encoding = data.decode("utf-8-sig"), "utf-8"
        except UnicodeDecodeError:
            # Excel on a Chinese Windows saves "CSV" in the ANSI code page, i.e. GBK.
            try:
                text, encoding = data.decode("gb18030"), "gb18030"
            except UnicodeDecodeError:
                raise InvalidInputError("the file is neither UTF-8 nor GB18030 text") from None
    else:
        text, encoding = data, "utf-8"
    return text.removeprefix("\ufeff"), encoding


def _header_key(cell: str) -> str:
    return re.sub(r"[\s_\-]+", "", one_line(cell).lower())


class CallerDirectory:
    """Callers and their phones. Every write is one transaction, with an `audit_log` row."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        cfg: Config,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._plan = phone_plan(cfg.site)

    @property
    def plan(self) -> PhonePlan:
        return self._plan

    # ----------------------------------------------------------------------- reading

    async def get(self, caller_id: int) -> CallerView | None:
        async with self._sessions() as s:
            row = await s.get(Caller, caller_id)
            if row is None:
                return None
            return (await caller_views(s, [row]))[0]

    async def match(self, number: str) -> list[CallerView]:
        """Every caller with this number, however it is written (several → the agent chooses)."""
        norm = normalize_phone(number, self._plan)
        if norm is None:
            return []
        async with self._sessions() as s:
            ids = await caller_ids_for(s, norm.number)
            if not ids:
                return []
            rows = (await s.execute(select(Caller).where(Caller.id.in_(ids)))).scalars().all()
            ordered = sorted(rows, key=lambda c: (not c.vip, c.name, c.id))
            return await caller_views(s, ordered)

    async def search(self, text: str, *, limit: int = 50) -> list[CallerView]:
        """Callers whose name, employee id, department, office, email or phone contains `text`."""
        query = one_line(text)[:100]
        if not query:
            return []
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", query) + "%"
        conds: list[Any] = [
            col.ilike(pattern, escape="\\")
            for col in (
                Caller.name,
                Caller.employee_id,
                Caller.department,
                Caller.office_location,
                Caller.email,
            )
        ]
        phone_conds: list[Any] = []
        norm = normalize_phone(query, self._plan)
        if norm is not None:
            phone_conds.append(CallerPhone.number_normalized == norm.number)
        digits = re.sub(r"\D", "", query)
        if len(digits) >= 3:
            phone_conds.append(CallerPhone.number_normalized.like(f"%{digits}%"))
        if phone_conds:
            conds.append(Caller.id.in_(select(CallerPhone.caller_id).where(or_(*phone_conds))))
        async with self._sessions() as s:
            rows = (
                (
                    await s.execute(
                        select(Caller)
                        .where(or_(*conds))
                        .order_by(Caller.name, Caller.id)
                        .limit(max(1, min(limit, 500)))
                    )
                )
                .scalars()
                .all()
            )
            return await caller_views(s, rows)

    # ----------------------------------------------------------------------- editing

    async def create(
        self,
        *,
        name: str,
        actor: str,
        phones: Sequence[str] = (),
        employee_id: str | None = None,
        department: str | None = None,
        office_location: str | None = None,
        email: str | None = None,
        vip: bool = False,
        notes: str | None = None,
    ) -> CallerView:
        values = self._validate(
            {
                "name": name,
                "employee_id": employee_id,
                "department": department,
                "office_location": office_location,
                "email": email,
                "vip": vip,
                "notes": notes,
                "phones": list(phones),
            }
        )
        if "name" not in values or values["name"] is None:
            raise InvalidInputError("name is required")
        now = self._clock.utcnow()
        async with write_unit(self._sessions) as s:
            row = Caller(
                name=values["name"],
                employee_id=values.get("employee_id"),
                department=values.get("department"),
                office_location=values.get("office_location"),
                email=values.get("email"),
                vip=bool(values.get("vip", False)),
                notes=values.get("notes"),
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            await s.flush()
            for p in values.get("phones", []):
                s.add(
                    CallerPhone(
                        caller_id=row.id, number_normalized=p.number, raw=p.raw, kind=p.kind
                    )
                )
            s.add(
                AuditLog(
                    at=now,
                    actor=actor[:64],
                    action="caller_created",
                    target=f"caller:{row.id}",
                    detail={"name": row.name, "employee_id": row.employee_id},
                )
            )
            await s.flush()
            view = (await caller_views(s, [row]))[0]
        log.info("caller_created", caller_id=view.id, actor=actor)
        return view

    async def update(self, caller_id: int, fields: Mapping[str, object], actor: str) -> CallerView:
        """Change some of name, employee_id, department, office_location, email, vip, notes,
        phones (a list of numbers; replaces the caller's phones). Writes an audit row with the
        old and new values of what changed."""
        unknown = sorted(set(fields) - {*_EDITABLE, "phones"})
        if unknown:
            raise InvalidInputError(f"cannot change caller field(s): {', '.join(unknown)}")
        values = self._validate(fields)
        if "name" in values and values["name"] is None:
            raise InvalidInputError("name is required")
        now = self._clock.utcnow()
        async with write_unit(self._sessions) as s:
            row = await s.get(Caller, caller_id)
            if row is None:
                raise TicketNotFoundError(f"no caller {caller_id}")
            changed: dict[str, list[Any]] = {}
            for key in _EDITABLE:
                if key in values and getattr(row, key) != values[key]:
                    changed[key] = [getattr(row, key), values[key]]
                    setattr(row, key, values[key])
            if "phones" in values:
                before = await self._phones_of(s, [row.id])
                old = [p.number_normalized for p in before.get(row.id, [])]
                new_phones: list[_Phone] = values["phones"]
                if await self._replace_phones(s, row.id, before.get(row.id, []), new_phones):
                    changed["phones"] = [old, [p.number for p in new_phones]]
            if changed:
                row.updated_at = now
                s.add(
                    AuditLog(
                        at=now,
                        actor=actor[:64],
                        action="caller_updated",
                        target=f"caller:{row.id}",
                        detail={"changed": changed},
                    )
                )
            await s.flush()
            view = (await caller_views(s, [row]))[0]
        if changed:
            log.info("caller_updated", caller_id=caller_id, actor=actor, fields=sorted(changed))
        return view

    def _validate(self, fields: Mapping[str, object]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "name":
                out[key] = line_field("name", value, MAX_NAME)
            elif key == "employee_id":
                out[key] = line_field("employee_id", value, MAX_EMPLOYEE_ID)
            elif key in ("department", "office_location"):
                out[key] = line_field(key, value, MAX_TEXT)
            elif key == "email":
                out[key] = email_field("email", value)
            elif key == "notes":
                out[key] = block_field("notes", value, MAX_NOTES)
            elif key == "vip":
                vip = parse_vip(value)
                if vip is None:
                    raise InvalidInputError(f"vip must be yes/no/1/0/是/否 (got {value!r:.20})")
                out[key] = vip
            elif key == "phones":
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, Iterable):
                    raise InvalidInputError("phones must be a list of numbers")
                found: dict[str, _Phone] = {}
                for item in value:
                    good, bad = parse_phones(str(item), self._plan)
                    if bad:
                        raise InvalidInputError(f"phone {bad[0]!r} is not a phone number")
                    for p in good:
                        found.setdefault(p.number, p)
                if len(found) > MAX_PHONES:
                    raise InvalidInputError(f"a caller has at most {MAX_PHONES} phones")
                out[key] = list(found.values())
        return out

    # ----------------------------------------------------------------------- import

    async def import_csv(self, data: str | bytes, *, actor: str = "import") -> ImportReport:
        """Upsert callers from CSV (columns name, employee_id, department, office_location,
        phones, vip, email; header names in any case/spacing, Chinese names accepted). Rows
        with an employee id update that caller; rows without one update the caller with the same
        name and a shared phone, else create one. Every refused row is reported with its line."""
        text, encoding = _decode(data)
        if len(text) > MAX_IMPORT_CHARS:
            raise InvalidInputError(f"the file is larger than {MAX_IMPORT_CHARS} characters")
        rows, rejected, warnings = self._parse_csv(text)
        if not rows:
            return ImportReport(
                rejected=tuple(rejected), warnings=tuple(warnings), encoding=encoding
            )
        created = updated = unchanged = 0
        now = self._clock.utcnow()
        async with write_unit(self._sessions, lock="directory") as s:
            by_emp = await self._callers_by_employee_id(
                s, [r.employee_id for r in rows if r.employee_id]
            )
            by_phone = await self._callers_by_name_and_phone(
                s, [r for r in rows if not r.employee_id]
            )
            all_ids = {c.id for c in by_emp.values()} | {c.id for c in by_phone.values()}
            phones_of = await self._phones_of(s, all_ids)
            fresh: list[tuple[Caller, tuple[_Phone, ...]]] = []
            for r in rows:
                existing = by_emp.get(r.employee_id) if r.employee_id else by_phone.get(r.line)
                if existing is None:
                    caller = Caller(
                        name=r.name,
                        employee_id=r.employee_id,
                        department=r.department,
                        office_location=r.office_location,
                        email=r.email,
                        vip=r.vip,
                        created_at=now,
                        updated_at=now,
                    )
                    s.add(caller)
                    fresh.append((caller, r.phones))
                    created += 1
                    if r.employee_id:
                        by_emp[r.employee_id] = caller
                    continue
                dirty = False
                for key in ("name", "department", "office_location", "email", "vip"):
                    value = getattr(r, key)
                    if getattr(existing, key) != value:
                        setattr(existing, key, value)
                        dirty = True
                if await self._replace_phones(
                    s, existing.id, phones_of.get(existing.id, []), list(r.phones)
                ):
                    dirty = True
                if dirty:
                    existing.updated_at = now
                    updated += 1
                else:
                    unchanged += 1
            # One batched INSERT for the new callers (ids come back), then one for their phones.
            await s.flush()
            s.add_all(
                CallerPhone(caller_id=c.id, number_normalized=p.number, raw=p.raw, kind=p.kind)
                for c, phones in fresh
                for p in phones
            )
            s.add(
                AuditLog(
                    at=now,
                    actor=actor[:64],
                    action="directory_import",
                    target=None,
                    detail={
                        "created": created,
                        "updated": updated,
                        "unchanged": unchanged,
                        "rejected": len(rejected),
                    },
                )
            )
        report = ImportReport(
            created=created,
            updated=updated,
            unchanged=unchanged,
            rejected=tuple(rejected),
            warnings=tuple(warnings),
            encoding=encoding,
        )
        log.info(
            "directory_imported",
            actor=actor,
            created=created,
            updated=updated,
            unchanged=unchanged,
            rejected=len(rejected),
        )
        return report

    def _parse_csv(self, text: str) -> tuple[list[_Row], list[RowProblem], list[RowProblem]]:
        rows: list[_Row] = []
        rejected: list[RowProblem] = []
        warnings: list[RowProblem] = []
        first_line = text.split("\n", 1)[0]
        delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
        header: list[str | None] | None = None
        seen_ids: dict[str, int] = {}
        while True:
            line = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                rejected.append(RowProblem(line, f"CSV syntax: {exc}"))
                if header is None:
                    return rows, rejected, warnings
                continue
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header, problem, notes = self._header(record)
                warnings.extend(RowProblem(line, n) for n in notes)
                if problem:
                    rejected.append(RowProblem(line, problem))
                    return rows, rejected, warnings
                continue
            parsed = self._row(line, header, record, seen_ids, warnings)
            if isinstance(parsed, str):
                rejected.append(RowProblem(line, parsed))
            else:
                rows.append(parsed)
                if parsed.employee_id:
                    seen_ids[parsed.employee_id] = line
        if header is None:
            rejected.append(RowProblem(1, "the file is empty (no header line)"))
        return rows, rejected, warnings

    @staticmethod
    def _header(record: list[str]) -> tuple[list[str | None], str | None, list[str]]:
        fields: list[str | None] = []
        notes: list[str] = []
        for cell in record:
            name = _HEADERS.get(_header_key(cell))
            if name is None:
                if one_line(cell):
                    notes.append(f"column {one_line(cell)[:40]!r} ignored")
            elif name in fields and name != "phones":
                notes.append(f"column {one_line(cell)[:40]!r} repeats {name}; ignored")
                name = None
            fields.append(name)
        missing = [f for f in _REQUIRED if f not in fields]
        if missing:
            return fields, f"missing column(s): {', '.join(missing)}", notes
        return fields, None, notes

    def _row(
        self,
        line: int,
        header: list[str | None],
        record: list[str],
        seen_ids: Mapping[str, int],
        warnings: list[RowProblem],
    ) -> _Row | str:
        extra = record[len(header) :]
        if any(cell.strip() for cell in extra):
            return f"{len(record)} fields, the header has {len(header)}"
        values: dict[str, str] = {}
        for name, cell in zip(header, record, strict=False):
            if name is None:
                continue
            if name == "phones" and values.get("phones"):
                values["phones"] += ";" + cell
            else:
                values[name] = cell
        try:
            name = line_field("name", values.get("name"), MAX_NAME)
            if name is None:
                return "no name"
            emp = line_field("employee id", values.get("employee_id"), MAX_EMPLOYEE_ID)
            department = line_field("department", values.get("department"), MAX_TEXT)
            office = line_field("office location", values.get("office_location"), MAX_TEXT)
            email = email_field("email", values.get("email"))
        except InvalidInputError as exc:
            return str(exc)
        vip = parse_vip(values.get("vip", ""))
        if vip is None:
            return f"bad vip value {one_line(values.get('vip'))[:20]!r} (use yes/no/1/0/是/否)"
        if emp is not None and emp in seen_ids:
            return f"duplicate employee id {emp} (first on line {seen_ids[emp]})"
        phones, bad = parse_phones(values.get("phones", ""), self._plan)
        if not phones:
            shown = one_line(values.get("phones"))[:40]
            return f"no valid phone (got {shown!r})" if shown else "no valid phone"
        if len(phones) > MAX_PHONES:
            return f"more than {MAX_PHONES} phones"
        for b in bad:
            warnings.append(RowProblem(line, f"phone {b!r} is not a number; skipped"))
        return _Row(line, name, emp, department, office, email, vip, tuple(phones))

    # ----------------------------------------------------------------------- helpers

    @staticmethod
    async def _callers_by_employee_id(s: AsyncSession, ids: list[str]) -> dict[str, Caller]:
        found: dict[str, Caller] = {}
        unique = sorted(set(ids))
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i : i + _CHUNK]
            result = await s.execute(
                select(Caller).where(Caller.employee_id.in_(chunk)).order_by(Caller.id)
            )
            for c in result.scalars():
                # Duplicates in the table (the column is not unique): the oldest one wins.
                if c.employee_id is not None:
                    found.setdefault(c.employee_id, c)
        return found

    @staticmethod
    async def _callers_by_name_and_phone(s: AsyncSession, rows: list[_Row]) -> dict[int, Caller]:
        """For rows without an employee id: line → the existing caller with the same name who has
        one of the row's phones."""
        numbers = sorted({p.number for r in rows for p in r.phones})
        owners: dict[str, set[int]] = {}
        callers: dict[int, Caller] = {}
        for i in range(0, len(numbers), _CHUNK):
            chunk = numbers[i : i + _CHUNK]
            result = await s.execute(
                select(CallerPhone.number_normalized, Caller)
                .join(Caller, Caller.id == CallerPhone.caller_id)
                .where(CallerPhone.number_normalized.in_(chunk))
            )
            for number, caller in result.all():
                owners.setdefault(number, set()).add(caller.id)
                callers[caller.id] = caller
        matched: dict[int, Caller] = {}
        for r in rows:
            candidates = sorted({cid for p in r.phones for cid in owners.get(p.number, ())})
            for cid in candidates:
                if callers[cid].name == r.name:
                    matched[r.line] = callers[cid]
                    break
        return matched

    @staticmethod
    async def _phones_of(
        s: AsyncSession, caller_ids: Iterable[int]
    ) -> dict[int, list[CallerPhone]]:
        ids = sorted(set(caller_ids))
        out: dict[int, list[CallerPhone]] = {}
        for i in range(0, len(ids), _CHUNK):
            result = await s.execute(
                select(CallerPhone)
                .where(CallerPhone.caller_id.in_(ids[i : i + _CHUNK]))
                .order_by(CallerPhone.id)
            )
            for p in result.scalars():
                out.setdefault(p.caller_id, []).append(p)
        return out

    @staticmethod
    async def _replace_phones(
        s: AsyncSession, caller_id: int, current: list[CallerPhone], wanted: list[_Phone]
    ) -> bool:
        """Make the caller's phones exactly `wanted`; True if anything changed."""
        have = {p.number_normalized: p for p in current}
        want = {p.number: p for p in wanted}
        gone = [p.id for n, p in have.items() if n not in want]
        if gone:
            await s.execute(delete(CallerPhone).where(CallerPhone.id.in_(gone)))
        for n, p in want.items():
            if n not in have:
                s.add(CallerPhone(caller_id=caller_id, number_normalized=n, raw=p.raw, kind=p.kind))
        return bool(gone) or any(n not in have for n in want)


_EDITABLE = ("name", "employee_id", "department", "office_location", "email", "vip", "notes")
