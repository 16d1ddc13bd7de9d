"""Configuration: the example loads and is complete; every kind of mistake gives one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from ctid.config import Config, load_config
from ctid.core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"


def _example_raw() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ctid.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _ctid(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctid.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_example_loads() -> None:
    cfg = load_config(EXAMPLE, env={})
    assert [s.id for s in cfg.seats] == ["seat1", "seat2", "seat3", "seat4"]
    assert cfg.ring.deadline_s == 15
    assert cfg.talk_cap.talk_cap_s == 600
    assert cfg.site.timezone == "Asia/Shanghai"
    assert cfg.hours.open.strftime("%H:%M") == "08:00"
    assert cfg.hours.close.strftime("%H:%M") == "17:30"
    assert cfg.site.data_dir.is_absolute()


def _missing_keys(model: type[BaseModel], raw: dict[str, Any], prefix: str) -> list[str]:
    missing = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        if name not in raw:
            missing.append(path)
            continue
        ann = field.annotation
        value = raw[name]
        if isinstance(ann, type) and issubclass(ann, BaseModel) and isinstance(value, dict):
            missing += _missing_keys(ann, value, path + ".")
    return missing


def test_example_documents_every_key() -> None:
    """Every key of every config section appears in config.example.toml, so it can never drift."""
    raw = _example_raw()
    missing = _missing_keys(Config, raw, "")
    # Optional file path shown commented out on purpose.
    missing = [m for m in missing if m != "hours.holidays_file"]
    assert missing == []
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "holidays_file" in text
    # list-of-table sections: every field of one item appears
    from ctid.config import IvrOptionConfig, LunchGroupConfig, SeatConfig, SupervisorConfig

    for model, items in (
        (SeatConfig, raw["seats"]),
        (SupervisorConfig, raw["supervisors"]),
        (LunchGroupConfig, raw["lunch"]["groups"]),
        (IvrOptionConfig, raw["ivr"]["options"]),
    ):
        assert set(model.model_fields) <= set().union(*(set(i) for i in items)), model


def test_env_overrides_secrets(tmp_path: Path) -> None:
    cfg = load_config(
        EXAMPLE,
        env={
            "CTID_AMI_SECRET": "s3cret",
            "CTID_DATABASE_URL": "sqlite+aiosqlite:///x.db",
            "CTID_SMTP_PASSWORD": "pw",
        },
    )
    assert cfg.ami.secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(cfg.ami)
    assert cfg.database_url == "sqlite+aiosqlite:///x.db"
    assert cfg.smtp.password.get_secret_value() == "pw"


def test_config_is_frozen() -> None:
    cfg = load_config(EXAMPLE, env={})
    with pytest.raises(Exception, match="frozen"):
        cfg.ring.max_rings = 5  # type: ignore[misc]


MINIMAL = """
[[seats]]
id = "seat1"
name = "Seat 1"
tier = "ordinary"
interface = "PJSIP/seat1"
"""

MISTAKES = [
    (
        "missing key",
        "[[seats]]\nid = 'seat1'\nname = 'S'\ntier = 'ordinary'\n",
        "seats[0].interface: is required but missing",
    ),
    (
        "unknown key",
        MINIMAL + "\n[ring]\nmax_ringz = 3\n",
        "ring.max_ringz: is not a known key (got 3)",
    ),
    (
        "wrong type",
        MINIMAL + "\n[ring]\nmax_rings = 'three'\n",
        "ring.max_rings: Input should be a valid integer",
    ),
    (
        "bad time",
        MINIMAL + "\n[hours]\nopen = '8h'\n",
        "hours.open: must be a time of day written HH:MM (got '8h')",
    ),
    (
        "bad tier",
        MINIMAL.replace("ordinary", "senior"),
        "seats[0].tier: Input should be 'ordinary' or 'expert' (got 'senior')",
    ),
    (
        "bad zone",
        MINIMAL + "\n[site]\ntimezone = 'Mars/Olympus'\n",
        "site.timezone: is not a known IANA time zone (got 'Mars/Olympus')",
    ),
    (
        "warning after cap",
        MINIMAL + "\n[talk_cap]\ntalk_cap_s = 600\nwarn_at_s = [480, 700]\n",
        "talk_cap.warn_at_s[1]: warns at or after the cap (talk_cap_s) (got 700)",
    ),
    (
        "sop-over-cap",
        MINIMAL + "\n[talk_cap]\ntalk_cap_s = 120\nwarn_at_s = [60]\n",
        "desk.sop: the steps' budgets add up to 600 s, more than talk_cap.talk_cap_s (120 s)",
    ),
    (
        "agent-reason-is-ctids",
        MINIMAL + '\n[desk]\npause_reasons = ["break", "rna"]\n',
        "desk.pause_reasons[1]: is a reason ctid keeps for itself (got 'rna')",
    ),
    (
        "tier not served",
        MINIMAL
        + "\n[[queues]]\nname = 'x'\ntiers = { expert = 0 }\n\n[ivr]\ndefault_queue = 'x'\noptions = []\n",
        "seats[0].tier: is not served by any queue (got 'ordinary')",
    ),
    (
        "lunch leaves tier uncovered",
        MINIMAL
        + """
[[seats]]
id = "seat3"
name = "Seat 3"
tier = "expert"
interface = "PJSIP/seat3"

[[lunch.groups]]
name = "A"
seats = ["seat1"]

[[lunch.groups]]
name = "B"
seats = ["seat3"]
""",
        "lunch.groups[0].seats: leaves the expert tier with nobody on the phones when group 'A' is on lunch duty",
    ),
    ("syntax", "[[seats]\n", "(syntax): not valid TOML"),
    (
        "bad e-mail",
        MINIMAL + "\n[incidents.second_line_groups]\nnetwork = 'notanemail'\n",
        "incidents.second_line_groups.network: is not an e-mail address (got 'notanemail')",
    ),
    (
        "closing before opening",
        MINIMAL + "\n[hours]\nopen = '18:00'\nclose = '08:00'\n",
        "hours.close: must be after hours.open",
    ),
]


@pytest.mark.parametrize(("kind", "text", "expected"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_mistakes_give_one_clear_line_and_exit_78(
    tmp_path: Path, kind: str, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert any(expected in line for line in info.value.problems), info.value.problems
    for line in info.value.problems:
        assert line.startswith(f"{path}: ")
    proc = _ctid("check-config", str(path))
    assert proc.returncode == 78
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_every_problem_is_listed(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + "\n[ring]\nmax_rings = 0\nring_cadence_s = -1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert len(info.value.problems) == 2
    assert any("ring.max_rings" in p for p in info.value.problems)
    assert any("ring.ring_cadence_s" in p for p in info.value.problems)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    proc = _ctid("check-config", str(tmp_path / "nope.toml"))
    assert proc.returncode == 78
    assert proc.stderr.strip() == f"{tmp_path / 'nope.toml'}: (file): does not exist"


def test_check_config_ok_summary() -> None:
    proc = _ctid("check-config", str(EXAMPLE), env={"CTID_AMI_SECRET": "from-the-env"})
    assert proc.returncode == 0, proc.stderr
    assert "seats       4 (ordinary: 2, expert: 2)" in proc.stdout
    assert "3 rings x 5 s = 15 s" in proc.stdout


def test_cli_help_everywhere() -> None:
    for args in (
        ["--help"],
        ["run", "--help"],
        ["check-config", "--help"],
        ["db", "upgrade", "--help"],
    ):
        proc = _ctid(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "usage: ctid" in proc.stdout
    proc = _ctid("version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("ctid ")
    proc = _ctid("no-such-command")
    assert proc.returncode == 2


BROKEN = """
[ami]
secret = ""

[ring]
ring_cadance_s = 4
max_rings = 0

[hours]
holidays_file = "no-such-holidays.csv"

[[seats]]
id = "seat1"
name = "Seat 1"
tier = "ordinary"
interface = "PJSIP/seat1"
staffed_by = "E1001"

[[seats]]
id = "seat2"
name = "Seat 2"
tier = "ordinary"
interface = "not an interface"
staffed_by = "E1002"

[[seats]]
id = "seat3"
name = "Seat 3"
tier = "ordinary"
interface = "PJSIP/seat3"
staffed_by = "E1001"
"""


def test_check_config_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, BROKEN)
    proc = _ctid("check-config", str(path), env={"CTID_AMI_SECRET": ""})
    assert proc.returncode == 78
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    expected = [
        # field problems ...
        f"{path}: ring.max_rings: Input should be greater than or equal to 1 (got 0)",
        f"{path}: ring.ring_cadance_s: is not a known key (got 4); did you mean 'ring_cadence_s'?",
        f"{path}: seats[1].interface: must be an Asterisk interface",
        # ... the cross-field one, with its index as written although seats[1] failed ...
        f"{path}: seats[2].staffed_by: already staffs seat 'seat1' (got 'E1001')",
        # ... and what running needs
        f"{path}: ami.secret: is empty (set it here or in CTID_AMI_SECRET)",
        f"{path}: hours.holidays_file: {tmp_path / 'no-such-holidays.csv'} does not exist",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)
    assert len(lines) == len(expected), lines
    assert "Traceback" not in proc.stderr


def test_secret_from_env_and_a_readable_holidays_file_pass(tmp_path: Path) -> None:
    (tmp_path / "holidays.csv").write_text("2026-10-01,holiday,National Day\n", encoding="utf-8")
    text = MINIMAL + '\n[hours]\nholidays_file = "holidays.csv"\n'
    path = _write(tmp_path, text)
    assert _ctid("check-config", str(path), env={"CTID_AMI_SECRET": "s3cret"}).returncode == 0
    cfg = load_config(path, env={"CTID_AMI_SECRET": "s3cret"}, deployment=True)
    assert cfg.hours.holidays_file == tmp_path / "holidays.csv"
    empty = _ctid("check-config", str(path), env={"CTID_AMI_SECRET": ""})
    assert empty.returncode == 78
    assert (
        empty.stderr.strip() == f"{path}: ami.secret: is empty (set it here or in CTID_AMI_SECRET)"
    )


def test_nested_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + "\n[ivr.prompts]\nwelcom = 'x'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.problems == [
        f"{path}: ivr.prompts.welcom: is not a known key (got 'x'); did you mean 'welcome'?"
    ]


def test_https_public_url_makes_cookies_secure(tmp_path: Path) -> None:
    plain = load_config(_write(tmp_path, MINIMAL), env={})
    assert plain.web.secure_cookies is False
    https = MINIMAL + '\n[web]\npublic_url = "https://desk.example.com"\nsecure_cookies = false\n'
    assert load_config(_write(tmp_path, https), env={}).web.secure_cookies is True
