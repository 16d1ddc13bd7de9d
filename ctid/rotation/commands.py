"""`ctid roster ...`: the roster subcommands as functions returning (text, exit code), plus the
argparse wiring the CLI mounts (`add_roster_arguments`, `run_roster`).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path

from ctid.config import Config
from ctid.core.clock import Clock, SystemClock
from ctid.core.errors import CtidError
from ctid.db import check_schema, create_engine, session_factory
from ctid.rotation.calendar import DAY_ABBR, CalendarError, HolidayFileError
from ctid.rotation.lunch import IsoWeek, RotationError
from ctid.rotation.roster import PlanRejectedError, RosterError, RosterStore

EXIT_OK = 0
EXIT_REJECTED = 1
"""The change was refused (it would leave a tier uncovered, or the file has bad lines)."""
EXIT_USAGE = 2
"""Unknown seat or group, malformed date/week/employee ID."""

Result = tuple[str, int]


@asynccontextmanager
async def open_roster(cfg: Config, clock: Clock | None = None) -> AsyncIterator[RosterStore]:
    """A `RosterStore` on the configured database (migrated, seeded on first use), disposed after.

    Raises `NotMigratedError`/`StoreError` for the CLI to map to its exit codes.
    """
    engine = create_engine(
        cfg.database_url,
        sqlite_busy_timeout_ms=cfg.database.sqlite_busy_timeout_ms,
        pool_size=1,
    )
    try:
        await check_schema(engine)
        store = RosterStore(session_factory(engine), clock or SystemClock(cfg.site.timezone), cfg)
        if not await store.seats():
            await store.seed_from_config()
        yield store
    finally:
        await engine.dispose()


async def _guard(step: Awaitable[str]) -> Result:
    try:
        return await step, EXIT_OK
    except PlanRejectedError as exc:
        return "\n".join(["rejected: the lunch plan would break", *exc.problems]) + "\n", (
            EXIT_REJECTED
        )
    except HolidayFileError as exc:
        return "\n".join(exc.problems) + "\n", EXIT_REJECTED
    except CalendarError as exc:
        return f"rejected: {exc}\n", EXIT_REJECTED
    except (RosterError, RotationError) as exc:
        return f"{exc}\n", EXIT_USAGE


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = [header, tuple("-" * w for w in widths), *rows]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]


async def show(store: RosterStore, clock: Clock, *, weeks: int = 4) -> Result:
    """Seats, the desk's state now, the next `weeks` weeks of lunch duty, and the overrides."""

    async def _show() -> str:
        if not 1 <= weeks <= 104:
            raise RosterError("--weeks must be between 1 and 104")
        rota = await store.rota()
        now = clock.now()
        seat_rows = [
            (
                s.id,
                s.name,
                s.tier,
                s.interface,
                s.staffed_by or "-",
                "" if s.active else "inactive",
            )
            for s in rota.seats
        ]
        out = _table(("seat", "name", "tier", "interface", "staffed by", ""), seat_rows)
        state = rota.state(now)
        nxt = state.next_transition
        group = f" (group {state.lunch_group})" if state.lunch_group else ""
        out += [
            "",
            f"now: {state.mode}{group}; {state.next_mode} from "
            f"{DAY_ABBR[nxt.weekday()]} {nxt:%Y-%m-%d %H:%M}",
        ]
        if rota.rotation.active:
            lunch = rota.rotation
            out += ["", f"lunch {lunch.start:%H:%M}-{lunch.end:%H:%M}, duty by ISO week:", ""]
        out.append(rota.render(now.date(), weeks).rstrip("\n"))
        overrides = await store.override_list()
        upcoming = [
            o
            for o in overrides
            if (o.day is not None and o.day >= now.date())
            or (o.week is not None and o.week >= IsoWeek.of(now.date()))
        ]
        if upcoming:
            out += ["", "overrides:"]
            out += [
                f"  {o.key:<10}  {'day' if o.kind == 'day' else 'week swap':<9}  {o.group}"
                f"  (by {o.created_by})"
                for o in upcoming
            ]
        problems = rota.problems(now.date(), weeks)
        if problems:
            out += ["", "problems:", *(f"  {p}" for p in problems)]
        return "\n".join(out) + "\n"

    return await _guard(_show())


async def set_staff(store: RosterStore, seat: str, employee: str, actor: str) -> Result:
    """`employee` "-" or "" clears the seat."""

    async def _do() -> str:
        emp = None if employee.strip() in ("", "-") else employee
        updated = await store.set_staff(seat, emp, actor)
        return f"{updated.id} ({updated.name}) is staffed by {updated.staffed_by or 'nobody'}\n"

    return await _guard(_do())


async def swap_week(store: RosterStore, week: str, group: str, actor: str) -> Result:
    async def _do() -> str:
        iso = IsoWeek.parse(week)
        await store.add_week_swap(iso, group, actor)
        return f"{iso}: lunch group {group} is on duty\n"

    return await _guard(_do())


async def day_override(store: RosterStore, day: str, group: str, actor: str) -> Result:
    async def _do() -> str:
        try:
            when = date.fromisoformat(day)
        except ValueError:
            raise RosterError(f"{day!r} is not a date written YYYY-MM-DD") from None
        await store.add_day_override(when, group, actor)
        return f"{when.isoformat()}: lunch group {group} is on duty\n"

    return await _guard(_do())


async def remove_override(store: RosterStore, key: str, actor: str) -> Result:
    async def _do() -> str:
        await store.remove_override(key, actor)
        return f"{key}: lunch override removed\n"

    return await _guard(_do())


async def import_holidays(store: RosterStore, path: str, actor: str) -> Result:
    try:
        text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8-sig")
    except OSError as exc:
        return f"{path}: cannot be read ({exc.strerror or exc})\n", EXIT_USAGE
    except UnicodeDecodeError:
        return f"{path}: is not UTF-8 text\n", EXIT_USAGE

    async def _do() -> str:
        done = await store.import_holidays(text, actor, source=path)
        return f"{path}: {done.added} added, {done.changed} changed, {done.unchanged} unchanged\n"

    return await _guard(_do())


# --------------------------------------------------------------------------- argparse


def add_roster_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `roster` subcommands to `parser` (the `ctid roster` parser); `run_roster` runs
    the parsed result."""
    sub = parser.add_subparsers(dest="roster_command", metavar="COMMAND", required=True)
    p = sub.add_parser("show", help="seats, the state now and the next weeks of lunch duty")
    p.add_argument("--weeks", type=int, default=4, metavar="N", help="weeks to show (default 4)")
    p = sub.add_parser("set-staff", help="who sits in a seat (EMPLOYEE '-' clears it)")
    p.add_argument("seat", metavar="SEAT")
    p.add_argument("employee", metavar="EMPLOYEE")
    p = sub.add_parser("swap-week", help="put a lunch group on duty for an ISO week")
    p.add_argument("week", metavar="YYYY-Www")
    p.add_argument("group", metavar="GROUP")
    p = sub.add_parser("day-override", help="put a lunch group on duty for one day")
    p.add_argument("day", metavar="YYYY-MM-DD")
    p.add_argument("group", metavar="GROUP")
    p = sub.add_parser("remove-override", help="remove a day override or a week swap")
    p.add_argument("key", metavar="YYYY-MM-DD|YYYY-Www")
    hol = sub.add_parser("holidays", help="public holidays and make-up working days")
    hol_sub = hol.add_subparsers(dest="holidays_command", metavar="COMMAND", required=True)
    p = hol_sub.add_parser("import", help="import a DATE,holiday|workday[,NAME] file")
    p.add_argument("file", metavar="FILE")


def default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in some containers
        return "cli"


async def run_roster(
    cfg: Config,
    args: argparse.Namespace,
    *,
    actor: str | None = None,
    clock: Clock | None = None,
) -> Result:
    """Run the `ctid roster` subcommand in `args`; print the text (stdout on 0, else stderr)."""
    who = actor or default_actor()
    clk = clock or SystemClock(cfg.site.timezone)
    async with open_roster(cfg, clk) as store:
        match args.roster_command:
            case "show":
                return await show(store, clk, weeks=args.weeks)
            case "set-staff":
                return await set_staff(store, args.seat, args.employee, who)
            case "swap-week":
                return await swap_week(store, args.week, args.group, who)
            case "day-override":
                return await day_override(store, args.day, args.group, who)
            case "remove-override":
                return await remove_override(store, args.key, who)
            case "holidays":
                return await import_holidays(store, args.file, who)
            case other:
                raise CtidError(f"unknown roster command {other!r}")
