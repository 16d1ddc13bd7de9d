"""`ctid doctor` on the shipped Asterisk files (consistent) and on a broken set (one line per fault)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ctid.asterisk.doctor import run_doctor
from ctid.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONTRIB = ROOT / "contrib" / "asterisk"
EXAMPLE = ROOT / "config.example.toml"


def _doctor(asterisk_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ctid.cli",
            "doctor",
            "-c",
            str(EXAMPLE),
            "--asterisk-dir",
            str(asterisk_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_shipped_contrib_files_are_consistent_with_the_example_config() -> None:
    assert run_doctor(CONTRIB, load_config(EXAMPLE, env={})) == []
    proc = _doctor(CONTRIB)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "consistent" in proc.stdout


def _broken(tmp_path: Path) -> Path:
    d = tmp_path / "etc-asterisk"
    shutil.copytree(CONTRIB, d)
    q = (d / "queues.conf").read_text()
    q = q.replace("\ntimeout = 15\n", "\ntimeout = 30\n", 1)  # [ordinary]
    q = q.replace("\nringinuse = no\n", "\nringinuse = yes\n", 2)  # [ordinary] and [expert]
    q = q.replace("member => PJSIP/seat4,0,Seat 4,PJSIP/seat4\n", "", 1)  # [expert] loses seat4
    q = q.replace("member => PJSIP/seat3,1,", "member => PJSIP/seat3,0,", 1)  # [shared] penalty
    (d / "queues.conf").write_text(q)
    e = (d / "extensions.conf").read_text()
    e = e.replace(" same => n,Set(CTID_QUEUE=ordinary)\n", "")
    (d / "extensions.conf").write_text(e)
    m = (d / "manager.conf").read_text()
    m = m.replace("write = call,agent,originate,reporting", "write = call,originate")
    (d / "manager.conf").write_text(m)
    return d


def test_broken_set_reports_each_fault_with_file_and_fix(tmp_path: Path) -> None:
    d = _broken(tmp_path)
    findings = [str(f) for f in run_doctor(d, load_config(EXAMPLE, env={}))]
    expect = [
        "queues.conf:17: [ordinary] rings a seat for 30 s but the three-ring deadline is 15 s",
        "[ordinary] may ring a seat that is already on a call",
        "[expert] may ring a seat that is already on a call",
        "[expert] lacks member PJSIP/seat4",
        "[shared] member PJSIP/seat3 has penalty 0, ctid's config says 1",
        "extensions.conf",
        "has no fail-open default before the AGI",
        "may not send QueuePause / QueueAdd / QueueRemove",
        "may not send CoreShowChannels (resync)",
    ]
    text = "\n".join(findings)
    for piece in expect:
        assert piece in text, (piece, text)
    assert all(" — fix: " in f for f in findings)
    proc = _doctor(d)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stdout.count("— fix:") == len(findings)


def test_templates_and_missing_files(tmp_path: Path) -> None:
    d = tmp_path / "ast"
    d.mkdir()
    (d / "queues.conf").write_text(
        "[desk](!)\nstrategy = rrmemory\ntimeout = 15\nringinuse = no\n\n"
        "[ordinary](desk)\n\n[expert](desk)\ntimeout = 20\n\n[shared](desk)\n"
    )
    findings = [str(f) for f in run_doctor(d, load_config(EXAMPLE, env={}))]
    text = "\n".join(findings)
    assert "manager.conf: not found" in text
    assert "extensions.conf: not found" in text
    assert "[expert] rings a seat for 20 s" in text
    assert "[ordinary] rings" not in text  # inherited timeout = 15 from the template
    assert "ringinuse" not in text


def test_unparseable_file_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    d = tmp_path / "ast"
    shutil.copytree(CONTRIB, d)
    (d / "queues.conf").write_text("[ordinary\ntimeout = 15\n")
    findings = [str(f) for f in run_doctor(d, load_config(EXAMPLE, env={}))]
    assert any("queues.conf:1: cannot be parsed" in f for f in findings), findings
