"""`ctid doctor` on the shipped Asterisk files (consistent) and on broken sets (one line per fault):
queues (static members, the ring-timeout margin, autopause), pjsip endpoints, placeholder
secrets, missing directories, and the IVR prompts under a sounds directory — through the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
import wave
from pathlib import Path

from ctid.asterisk.doctor import run_doctor
from ctid.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONTRIB = ROOT / "contrib" / "asterisk"
EXAMPLE = ROOT / "config.example.toml"


def _ctid(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctid.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def _doctor(asterisk_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _ctid("doctor", "-c", str(EXAMPLE), "--asterisk-dir", str(asterisk_dir), *extra)


def _copy(tmp_path: Path) -> Path:
    d = tmp_path / "etc-asterisk"
    shutil.copytree(CONTRIB, d)
    return d


def _findings(d: Path) -> list[str]:
    return [str(f) for f in run_doctor(d, load_config(EXAMPLE, env={})).findings]


def test_shipped_contrib_files_are_consistent_with_the_example_config() -> None:
    report = run_doctor(CONTRIB, load_config(EXAMPLE, env={}))
    assert report.findings == []
    proc = _doctor(CONTRIB)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "consistent" in proc.stdout
    # the shipped placeholders are warnings: printed, exit code untouched
    assert "warning: manager.conf:" in proc.stdout
    assert "[ctid] secret is the placeholder 'CHANGE-ME'" in proc.stdout
    assert proc.stdout.count("warning: pjsip.conf:") == 5
    assert "[seat1] password is the placeholder 'CHANGE-ME-1'" in proc.stdout


def test_contrib_queues_have_no_static_members_and_a_ring_timeout_margin() -> None:
    text = (CONTRIB / "queues.conf").read_text()
    assert "\nmember" not in text
    cfg = load_config(EXAMPLE, env={})
    timeouts = [
        float(line.split("=")[1]) for line in text.splitlines() if line.startswith("timeout")
    ]
    assert len(timeouts) == len(cfg.queues)
    assert all(t >= cfg.ring.deadline_s + 5 for t in timeouts)


def test_a_static_member_fails_the_doctor_and_is_named(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    q = (d / "queues.conf").read_text()
    q = q.replace("[expert]\n", "[expert]\nmember => PJSIP/seat3,0,Seat 3,PJSIP/seat3\n", 1)
    (d / "queues.conf").write_text(q)
    line = q.splitlines().index("member => PJSIP/seat3,0,Seat 3,PJSIP/seat3") + 1
    proc = _doctor(d)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"queues.conf:{line}: [expert] has a static member PJSIP/seat3" in proc.stdout
    assert "delete the line `member => PJSIP/seat3,0,Seat 3,PJSIP/seat3`" in proc.stdout
    assert "1 problem(s)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_broken_set_reports_each_fault_with_file_and_fix(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    q = (d / "queues.conf").read_text()
    q = q.replace("\ntimeout = 20\n", "\ntimeout = 15\n", 1)  # [ordinary]: equal to the deadline
    q = q.replace("\nringinuse = no\n", "\nringinuse = yes\n", 2)  # [ordinary] and [expert]
    q = q.replace("\nautopause = no\n", "\nautopause = all\n", 1)  # [ordinary]
    q = q.replace("persistentmembers = yes", "persistentmembers = no")
    (d / "queues.conf").write_text(q)
    e = (d / "extensions.conf").read_text()
    e = e.replace(" same => n,Set(CTID_QUEUE=ordinary)\n", "")
    (d / "extensions.conf").write_text(e)
    m = (d / "manager.conf").read_text()
    m = m.replace("write = call,agent,originate,reporting", "write = call,originate")
    (d / "manager.conf").write_text(m)
    findings = _findings(d)
    expect = [
        "[ordinary] rings a seat for 15 s, less than 5 s past the three-ring deadline of 15 s",
        "set timeout = 20",
        "[ordinary] may ring a seat that is already on a call",
        "[expert] may ring a seat that is already on a call",
        "[ordinary] autopause = all",
        "persistentmembers = no",
        "has no fail-open default before the AGI",
        "may not send QueuePause / QueueAdd / QueueRemove",
        "may not send CoreShowChannels (resync)",
    ]
    text = "\n".join(findings)
    for piece in expect:
        assert piece in text, (piece, text)
    assert len(findings) == len(expect) - 1  # the timeout finding carries its fix
    assert all(" — fix: " in f for f in findings)
    proc = _doctor(d)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stdout.count("— fix:") == len(findings)


def test_listen_in_contexts_must_dial_a_local_whose_second_half_spies(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    e = (d / "extensions.conf").read_text()
    # the older dialplan: ChanSpy on the supervisor's phone itself, no [ctid-spy-run]
    head, _, rest = e.partition("[ctid-spy]\n")
    _, _, tail = rest.partition("[ctid-callback]\n")
    old = "exten => spy,1,ChanSpy(${CTID_SPY_CHANNEL},${CTID_SPY_OPTIONS})\n\n"
    (d / "extensions.conf").write_text(f"{head}[ctid-spy]\n{old}[ctid-callback]\n{tail}")
    text = "\n".join(_findings(d))
    assert "[ctid-spy] does not run ctid's listen-in step" in text
    assert "Dial(Local/${EXTEN}@ctid-spy-run/n)" in text
    assert "no [ctid-spy-run] context: supervisors cannot listen in" in text


def test_pjsip_every_seat_and_supervisor_is_an_endpoint_with_an_aor(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    p = (d / "pjsip.conf").read_text()
    # seat2 loses its endpoint section; sup1's endpoint names an AOR that does not exist
    p = p.replace("[seat2]\ntype = endpoint", "[seat2-old]\ntype = endpoint", 1)
    p = p.replace("aors = sup1", "aors = sup1-phone", 1)
    (d / "pjsip.conf").write_text(p)
    text = "\n".join(_findings(d))
    assert "seat seat2 rings PJSIP/seat2, but there is no [seat2] with type = endpoint" in text
    assert "endpoint [sup1] (supervisor S9001) names AOR 'sup1-phone'" in text
    assert "seat1" not in text


def test_missing_directory_is_one_line() -> None:
    proc = _doctor(Path("/nonexistent/asterisk"))
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert lines == [
        "/nonexistent/asterisk: is not a directory — fix: pass the PBX's configuration "
        "directory with --asterisk-dir"
    ]


def test_templates_and_missing_files(tmp_path: Path) -> None:
    d = tmp_path / "ast"
    d.mkdir()
    (d / "queues.conf").write_text(
        "[desk](!)\nstrategy = rrmemory\ntimeout = 20\nringinuse = no\n\n"
        "[ordinary](desk)\n\n[expert](desk)\ntimeout = 16\n\n[shared](desk)\n"
    )
    text = "\n".join(_findings(d))
    assert "manager.conf: not found" in text
    assert "extensions.conf: not found" in text
    assert "pjsip.conf: not found" in text
    assert "[expert] rings a seat for 16 s" in text
    assert "[ordinary] rings" not in text  # inherited timeout = 20 from the template
    assert "ringinuse" not in text


def test_unparseable_file_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    (d / "queues.conf").write_text("[ordinary\ntimeout = 15\n")
    assert any("queues.conf:1: cannot be parsed" in f for f in _findings(d))


# --------------------------------------------------------------------------- prompts


def test_prompts_install_then_doctor_sounds_dir(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    proc = _ctid("prompts", "install", "-c", str(EXAMPLE), "--dest", str(sounds))
    assert proc.returncode == 0, proc.stderr
    assert "23 zh prompts installed" in proc.stdout
    welcome = sounds / "ctid" / "welcome.wav"
    with wave.open(str(welcome), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    assert (sounds / "ctid" / "callback-offer.wav").is_file()
    assert (sounds / "ctid" / "status-in_progress.wav").is_file()
    ok = _doctor(CONTRIB, "--sounds-dir", str(sounds))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"contrib/asterisk and {sounds}: consistent" in ok.stdout.replace(str(ROOT) + "/", "")

    (sounds / "ctid" / "menu.wav").unlink()
    (sounds / "ctid" / "goodbye.wav").write_bytes(b"not a wav")
    bad = _doctor(CONTRIB, "--sounds-dir", str(sounds))
    assert bad.returncode == 1
    assert f"{sounds}/ctid/menu.wav: is missing" in bad.stdout
    assert "(ivr.prompts.menu)" in bad.stdout
    assert f"{sounds}/ctid/goodbye.wav: is not a readable WAV file" in bad.stdout
    assert "2 problem(s)" in bad.stderr


def test_prompts_install_english_differs_and_the_sounds_dir_must_exist(tmp_path: Path) -> None:
    zh, en = tmp_path / "zh", tmp_path / "en"
    assert _ctid("prompts", "install", "-c", str(EXAMPLE), "--dest", str(zh)).returncode == 0
    proc = _ctid("prompts", "install", "-c", str(EXAMPLE), "--dest", str(en), "--language", "en")
    assert proc.returncode == 0, proc.stderr
    assert "23 en prompts installed" in proc.stdout
    for name in ("welcome", "menu", "closed"):
        a = (zh / "ctid" / f"{name}.wav").read_bytes()
        b = (en / "ctid" / f"{name}.wav").read_bytes()
        assert a != b
    missing = _doctor(CONTRIB, "--sounds-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 1
    assert f"{tmp_path}/nowhere: is not a directory" in missing.stdout


def test_prompts_follow_the_configured_names(tmp_path: Path) -> None:
    cfg = tmp_path / "ctid.toml"
    text = EXAMPLE.read_text().replace('welcome = "ctid/welcome"', 'welcome = "acme/hello"')
    cfg.write_text(text)
    sounds = tmp_path / "sounds"
    proc = _ctid("prompts", "install", "-c", str(cfg), "--dest", str(sounds))
    assert proc.returncode == 0, proc.stderr
    assert (sounds / "acme" / "hello.wav").is_file()
    assert not (sounds / "ctid" / "welcome.wav").exists()
