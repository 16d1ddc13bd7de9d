"""`ctid roster ...` end to end on a migrated SQLite file: argparse wiring, output and exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ctid.config import Config
from ctid.core.clock import FakeClock
from ctid.core.errors import NotMigratedError
from ctid.db import upgrade
from ctid.rotation.commands import (
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    add_roster_arguments,
    open_roster,
    run_roster,
)

from ._desk import SHANGHAI
from .test_roster import NOW, config


@pytest.fixture
async def cfg(sqlite_url: str) -> Config:
    await upgrade(sqlite_url)
    return config(database={"url": sqlite_url})


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ctid roster")
    add_roster_arguments(parser)
    return parser.parse_args(argv)


async def roster(cfg: Config, *argv: str) -> tuple[str, int]:
    return await run_roster(cfg, parse(*argv), actor="cli:ops", clock=FakeClock(NOW, SHANGHAI))


async def test_show_prints_seats_state_and_four_weeks(cfg: Config) -> None:
    text, code = await roster(cfg, "show", "--weeks", "4")
    assert code == EXIT_OK
    lines = text.splitlines()
    assert lines[0].split() == ["seat", "name", "tier", "interface", "staffed", "by"]
    assert lines[2].split() == ["seat1", "Seat", "1", "ordinary", "PJSIP/seat1", "E1001"]
    assert "now: open; lunch from Mon 2026-11-23 12:00" in lines
    header = next(i for i, line in enumerate(lines) if line.startswith("week "))
    assert lines[header].split()[:5] == ["week", "dates", "on", "duty", "at"]
    weeks = lines[header + 2 : header + 6]
    assert [w.split()[0] for w in weeks] == ["2026-W48", "2026-W49", "2026-W50", "2026-W51"]
    assert "B: Seat 2, Seat 4" in weeks[0] and "Seat 1, Seat 3" in weeks[0]
    assert "A: Seat 1, Seat 3" in weeks[1]


async def test_set_staff_swap_and_day_override_then_show(cfg: Config) -> None:
    assert await roster(cfg, "set-staff", "seat2", "E9000") == (
        "seat2 (Seat 2) is staffed by E9000\n",
        EXIT_OK,
    )
    assert await roster(cfg, "swap-week", "2026-W49", "B") == (
        "2026-W49: lunch group B is on duty\n",
        EXIT_OK,
    )
    assert (await roster(cfg, "day-override", "2026-12-01", "A"))[1] == EXIT_OK
    text, _ = await roster(cfg, "show", "--weeks", "2")
    assert "E9000" in text
    w49 = next(line for line in text.splitlines() if line.startswith("2026-W49"))
    assert "B: Seat 2, Seat 4 *" in w49
    assert "week swap: B instead of A" in w49 and "Tue 12-01 lunch duty A" in w49
    assert "  2026-W49    week swap  B  (by cli:ops)" in text
    assert (await roster(cfg, "remove-override", "2026-W49"))[1] == EXIT_OK
    assert (await roster(cfg, "set-staff", "seat2", "-"))[0].endswith("by nobody\n")


async def test_usage_errors_and_rejections_have_their_exit_codes(cfg: Config) -> None:
    assert await roster(cfg, "swap-week", "2026-49", "B") == (
        "'2026-49' is not an ISO week written YYYY-Www\n",
        EXIT_USAGE,
    )
    assert (await roster(cfg, "day-override", "2026-12-32", "A"))[1] == EXIT_USAGE
    assert (await roster(cfg, "set-staff", "seat9", "E1"))[1] == EXIT_USAGE
    assert (await roster(cfg, "swap-week", "2026-W49", "Z"))[1] == EXIT_USAGE
    assert (await roster(cfg, "show", "--weeks", "0"))[1] == EXIT_USAGE


async def test_rejected_plan_names_week_and_tier(cfg: Config) -> None:
    loose = cfg.model_copy(update={"lunch": cfg.lunch.model_copy(update={"allow_overflow": True})})
    async with open_roster(loose, FakeClock(NOW, SHANGHAI)) as store:
        await store.set_tier("seat3", "ordinary", "ops")
    text, code = await roster(cfg, "swap-week", "2026-W50", "A")
    assert code == EXIT_REJECTED
    assert text == (
        "rejected: the lunch plan would break\n"
        "week 2026-W50: no expert seat on lunch duty (group A: seat1, seat3)\n"
    )
    shown, _ = await roster(cfg, "show", "--weeks", "2")
    assert (
        "problems:\n  week 2026-W49: no expert seat on lunch duty (group A: seat1, seat3)" in shown
    )


async def test_holidays_import(cfg: Config, tmp_path: Path) -> None:
    good = tmp_path / "holidays.csv"
    good.write_text("2026-12-25,holiday,Christmas\n", encoding="utf-8")
    assert await roster(cfg, "holidays", "import", str(good)) == (
        f"{good}: 1 added, 0 changed, 0 unchanged\n",
        EXIT_OK,
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("2026-12-25,vacation\n", encoding="utf-8")
    assert await roster(cfg, "holidays", "import", str(bad)) == (
        f"{bad}:1: kind must be 'holiday' or 'workday', got 'vacation'\n",
        EXIT_REJECTED,
    )
    text, code = await roster(cfg, "holidays", "import", str(tmp_path / "missing.csv"))
    assert code == EXIT_USAGE and "cannot be read" in text


async def test_unmigrated_database_is_reported_to_the_cli(sqlite_url: str) -> None:
    with pytest.raises(NotMigratedError):
        await roster(config(database={"url": sqlite_url}), "show")
