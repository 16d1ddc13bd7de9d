"""The CLI's database commands as a user runs them: users, caller import, roster, report."""

from __future__ import annotations

import subprocess
import sys
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
    month = ctid(config, "report", "--agent-month", "2026-11", "--csv")
    assert month.returncode == 0, month.stderr
