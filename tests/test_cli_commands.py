"""The CLI's database commands as a user runs them: users, caller import, roster, report."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ctid.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    return path


def ctid(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctid.cli", *args, "-c", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_commands_refuse_an_unmigrated_database(config: Path) -> None:
    proc = ctid(config, "roster", "show")
    assert proc.returncode == 3
    assert "ctid db upgrade" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_users_callers_roster_report(config: Path, tmp_path: Path) -> None:
    assert ctid(config, "db", "upgrade").returncode == 0

    added = ctid(
        config,
        "users",
        "add",
        "E1001",
        "--name",
        "王芳",
        "--role",
        "agent",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert added.returncode == 0, added.stderr
    assert "E1001 (agent) added" in added.stdout
    again = ctid(
        config,
        "users",
        "add",
        "E1001",
        "--name",
        "x",
        "--role",
        "agent",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert again.returncode == 1
    assert "Traceback" not in again.stderr
    weak = ctid(config, "users", "passwd", "E1001", "--password-stdin", stdin="short\n")
    assert weak.returncode == 1

    csv = tmp_path / "callers.csv"
    csv.write_bytes(
        "\ufeffname,employee_id,department,office_location,phones,vip\n"
        "张三,E5001,财务部,北京总部 5F,+86 138-0013-8000,是\n"
        ",E5002,IT,Shanghai,13900001111,no\n"
        "Li Si,E5003,HR,Shanghai,not-a-number,no\n".encode()
    )
    imported = ctid(config, "callers", "import", str(csv))
    assert imported.returncode == 1  # some rows were rejected
    assert "1 created" in imported.stdout
    assert f"{csv}:3: rejected:" in imported.stderr
    assert f"{csv}:4: rejected:" in imported.stderr

    shown = ctid(config, "roster", "show", "--weeks", "2")
    assert shown.returncode == 0, shown.stderr
    assert "seat1" in shown.stdout or "Seat 1" in shown.stdout

    report = ctid(config, "report", "--from", "2026-11-01", "--to", "2026-11-30", "--by", "seat")
    assert report.returncode == 0, report.stderr
    bad = ctid(config, "report", "--from", "2026-13-01", "--to", "2026-11-30")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    seat_time = ctid(
        config, "report", "--seat-time", "--from", "2026-11-01", "--to", "2026-11-30", "--csv"
    )
    assert seat_time.returncode == 0, seat_time.stderr
    assert seat_time.stdout.startswith("seat,day,ready_s,ringing_s,talking_s,wrapup_s,paused_s")
    month = ctid(config, "report", "--agent-month", "2026-11", "--csv")
    assert month.returncode == 0, month.stderr
    for line in report.stdout.splitlines():
        assert len(line) <= 100, line  # wide tables switch to one record per seat
    assert "-- seat: seat1" in report.stdout


def run_ctid(*args: str, stdin: str | None = "") -> subprocess.CompletedProcess[str]:
    """`ctid ARGS` exactly as given (options where the user puts them)."""
    return subprocess.run(
        [sys.executable, "-m", "ctid.cli", *args],
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_usage_errors_exit_2_with_one_line(config: Path) -> None:
    proc = run_ctid("report", "-c", str(config))
    assert proc.returncode == 2
    assert "give --from and --to" in one_line(proc)
    proc = run_ctid("report")  # no config at all: still a usage error first
    assert proc.returncode == 2
    proc = run_ctid("report", "--by", "floor", "-c", str(config))
    assert proc.returncode == 2
    assert "invalid choice: 'floor'" in one_line(proc)
    proc = run_ctid("users", "add", "E1", "--name", "x", "--role", "agent", "--email", "notanemail")
    assert proc.returncode == 2
    assert "'notanemail' is not an e-mail address" in one_line(proc)


def test_missing_input_file_exits_66_with_its_path(config: Path, tmp_path: Path) -> None:
    assert ctid(config, "db", "upgrade").returncode == 0
    missing = tmp_path / "missing.csv"
    for args in (
        ("callers", "import", str(missing)),
        ("roster", "holidays", "import", str(missing)),
        ("db", "restore", str(missing)),
    ):
        proc = ctid(config, *args)
        assert proc.returncode == 66, (args, proc.stderr)
        assert one_line(proc) == f"ctid: {missing}: does not exist"


def test_global_options_before_or_after_any_subcommand(config: Path, tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.csv"
    holidays.write_text("2026-10-01,holiday,National Day\n", encoding="utf-8")
    assert run_ctid("--log-level", "warning", "-c", str(config), "db", "upgrade").returncode == 0
    for args in (
        ("-c", str(config), "roster", "holidays", "import", str(holidays)),
        ("roster", "-c", str(config), "holidays", "import", str(holidays)),
        ("roster", "holidays", "import", str(holidays), "-c", str(config), "--log-level", "debug"),
        ("roster", "holidays", "--log-level", "error", "import", str(holidays), "-c", str(config)),
    ):
        proc = run_ctid(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert f"{holidays}:" in proc.stdout
    proc = run_ctid("users", "list", "--log-level", "warning", "-c", str(config))
    assert proc.returncode == 0, proc.stderr
    proc = run_ctid("--log-level", "loud", "users", "list")
    assert proc.returncode == 2
    assert "invalid choice: 'loud'" in one_line(proc)


def test_users_list_disable_enable(config: Path) -> None:
    assert ctid(config, "db", "upgrade").returncode == 0
    empty = ctid(config, "users", "list")
    assert empty.returncode == 0
    assert "no users yet" in empty.stdout
    for emp, email in (("E1001", "wang.fang@example.com"), ("S9001", None)):
        args = ["users", "add", emp, "--name", f"User {emp}", "--role", "agent"]
        args += ["--email", email] if email else []
        proc = ctid(config, *args, "--password-stdin", stdin="correct horse battery\n")
        assert proc.returncode == 0, proc.stderr
    listed = ctid(config, "users", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[2:]]
    assert [r[0] for r in rows] == ["E1001", "S9001"]
    assert "wang.fang@example.com" in listed.stdout

    off = ctid(config, "users", "disable", "E1001")
    assert off.returncode == 0, off.stderr
    assert "user E1001 disabled (its sessions were ended)" in off.stdout
    listed = ctid(config, "users", "list")
    e1001 = next(line for line in listed.stdout.splitlines() if line.startswith("E1001"))
    assert "DISABLED" in e1001
    assert (
        ctid(config, "users", "disable", "E1001").stdout.strip()
        == "user E1001 was already disabled"
    )
    on = ctid(config, "users", "enable", "E1001")
    assert on.returncode == 0
    assert "DISABLED" not in ctid(config, "users", "list").stdout
    unknown = ctid(config, "users", "disable", "E9999")
    assert unknown.returncode == 1
    assert "no user with employee ID E9999" in one_line(unknown)


def test_users_add_without_a_terminal_or_password_stdin(config: Path) -> None:
    assert ctid(config, "db", "upgrade").returncode == 0
    proc = run_ctid(
        "users", "add", "E1001", "--name", "x", "--role", "agent", "-c", str(config), stdin=None
    )
    assert proc.returncode == 2
    assert "--password-stdin" in one_line(proc)
    assert "no users yet" in ctid(config, "users", "list").stdout  # nothing half-added


def test_the_gc_pauses_only_while_ctid_run_starts(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ctid run` starts without the cyclic GC and turns it back on once it serves; every other
    command (and a run that never serves) leaves it as it was."""
    import gc

    import ctid.app
    from ctid.cli import main

    seen: list[tuple[str, bool]] = []

    async def serving(cfg: object, path: object, on_serving: Callable[[], None] | None) -> None:
        seen.append(("starting", gc.isenabled()))
        assert on_serving is not None
        on_serving()
        seen.append(("serving", gc.isenabled()))

    monkeypatch.setenv("CTID_AMI_SECRET", "test-secret")
    monkeypatch.setattr(ctid.app, "run", serving)
    try:
        assert main(["run", "-c", str(config)]) == 0
    finally:
        gc.unfreeze()
    assert seen == [("starting", False), ("serving", True)]
    assert gc.isenabled()

    assert main(["version"]) == 0
    assert gc.isenabled()
    assert main(["run", "-c", str(config.parent / "missing.toml")]) != 0  # never serves
    assert gc.isenabled()
    gc.disable()
    try:
        assert main(["version"]) == 0
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
