"""`ctid doctor`: lint the PBX's .conf files (manager, queues, extensions, pjsip; parsed with
pyst2's config parser) and the IVR's sound files against ctid's config."""

# Each finding names the file, the line where it can be seen, what is wrong and the fix; placeholder
# secrets are warnings that leave the exit code alone.

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asterisk.config import Config as PystConfig
from asterisk.config import ParseError

from ctid.config import Config
from ctid.prompts import check_sounds, prompt_seconds

_TEMPLATE_HEADER = re.compile(r"^\[([^\]]+)\]\s*\(([^)]*)\)\s*(;.*)?$")
_AGI_URL = re.compile(r"AGI\(\s*agi://([^:/)]+)(?::(\d+))?/([^),]*)", re.IGNORECASE)
_SET_QUEUE = re.compile(r"Set\(\s*CTID_QUEUE\s*=\s*([^)]*)\)", re.IGNORECASE)
_QUEUE_APP = re.compile(r"\bQueue\(\s*\$\{CTID_QUEUE\}", re.IGNORECASE)

# What ctid needs from its AMI user. Asterisk grants an action when the user holds ANY of the
# action's classes, so each need lists the alternatives.
READ_NEEDS: dict[str, tuple[str, ...]] = {
    "call": ("call",),  # Newchannel, Hangup, ChanSpyStart/Stop, OriginateResponse
    "agent": ("agent",),  # Queue*, Agent* events
}
WRITE_NEEDS: dict[str, tuple[str, ...]] = {
    "Hangup / Redirect / AbsoluteTimeout": ("call",),
    "QueuePause / QueueAdd / QueueRemove": ("agent",),
    "Originate (ChanSpy, callbacks)": ("originate",),
    "CoreShowChannels (resync)": ("system", "reporting"),
}


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    problem: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line > 0 else self.file
        return f"{where}: {self.problem} — fix: {self.fix}"


@dataclass
class _Section:
    name: str
    line: int
    items: list[tuple[str, str, int]]  # (name, value, line)
    templates: list[str]
    is_template: bool

    def get(self, key: str) -> tuple[str, int] | None:
        for name, value, line in reversed(self.items):
            if name == key:
                return value, line
        return None

    def all(self, key: str) -> list[tuple[str, int]]:
        return [(v, n) for k, v, n in self.items if k == key]


class _PreprocessedConfig(PystConfig):  # type: ignore[misc]
    """pyst2's parser rejects template headers (`[name](tmpl)`) and `#include`; feed it plain lines
    and remember the templates ourselves, keeping line numbers intact."""

    def __init__(self, filename: str) -> None:
        self.templates_of: dict[int, tuple[list[str], bool]] = {}
        super().__init__(filename)

    def load(self) -> None:
        with open(self.filename, encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
        out = []
        for number, raw in enumerate(lines, start=1):
            stripped = raw.strip()
            m = _TEMPLATE_HEADER.match(stripped)
            if m:
                opts = [o.strip() for o in m.group(2).split(",") if o.strip()]
                self.templates_of[number] = ([o for o in opts if o != "!"], "!" in opts)
                out.append(f"[{m.group(1)}]\n")
            elif stripped.startswith("#"):
                out.append(";" + raw)  # #include / #exec: not followed by the doctor
            else:
                out.append(raw)
        self.raw_lines = out


def _parse(path: Path) -> list[_Section]:
    cfg = _PreprocessedConfig(str(path))
    sections: list[_Section] = []
    for cat in cfg.categories:
        templates, is_template = cfg.templates_of.get(cat.number, ([], False))
        items = [(it.name.strip(), str(it.value).strip(), it.number) for it in cat.items]
        sections.append(_Section(cat.name, cat.number, items, templates, is_template))
    return sections


def _resolved(sections: list[_Section], section: _Section, key: str) -> tuple[str, int] | None:
    """A key's value with Asterisk template inheritance (own value wins, then templates in order)."""
    own = section.get(key)
    if own is not None:
        return own
    by_name = {s.name: s for s in sections}
    for tmpl in reversed(section.templates):
        parent = by_name.get(tmpl)
        if parent is not None:
            found = _resolved(sections, parent, key)
            if found is not None:
                return found
    return None


def _split_perms(value: str) -> set[str]:
    return {p.strip().lower() for p in value.split(",") if p.strip()}


RING_TIMEOUT_MARGIN_S = 5.0
"""A queue's own ring timeout must exceed ctid's three-ring deadline by at least this much: ctid
cuts the ringing leg at the deadline, and the queue's timeout is only the fallback for when ctid
is down. Equal values make the cut a race app_queue wins some of the time under load."""
_PLACEHOLDER = "change-me"


def check_queues(path: Path, cfg: Config) -> list[Finding]:
    name = path.name
    out: list[Finding] = []
    sections = _parse(path)
    general = next((s for s in sections if s.name == "general"), None)
    by_name = {s.name: s for s in sections if not s.is_template}
    deadline = cfg.ring.deadline_s
    wanted = deadline + RING_TIMEOUT_MARGIN_S
    persistent = general.get("persistentmembers") if general is not None else None
    if persistent is not None and persistent[0].lower() in ("no", "false", "0", "off"):
        out.append(
            Finding(
                name,
                persistent[1],
                "persistentmembers = no: after a PBX restart the queues are empty until ctid "
                "logs in again (ctid adds the members; nothing else does)",
                "set persistentmembers = yes in [general]",
            )
        )
    for queue in cfg.queues:
        sec = by_name.get(queue.name)
        if sec is None:
            out.append(
                Finding(
                    name,
                    0,
                    f"queue [{queue.name}] (ctid's queues) is not defined",
                    f"add a [{queue.name}] section with timeout = {wanted:g}, ringinuse = no, "
                    "autopause = no and no member => lines",
                )
            )
            continue
        timeout = _resolved(sections, sec, "timeout")
        value = float(timeout[0]) if timeout and _is_number(timeout[0]) else 15.0
        line = timeout[1] if timeout else sec.line
        if value < wanted - 1e-6:
            out.append(
                Finding(
                    name,
                    line,
                    f"[{queue.name}] rings a seat for {value:g} s, less than {RING_TIMEOUT_MARGIN_S:g} s "
                    f"past the three-ring deadline of {deadline:g} s ({cfg.ring.max_rings} x "
                    f"{cfg.ring.ring_cadence_s:g} s): the queue's timeout races ctid's cut",
                    f"set timeout = {wanted:g} (ctid cuts at {deadline:g} s; the queue's timeout "
                    "is the fallback for when ctid is down)",
                )
            )
        ringinuse = _resolved(sections, sec, "ringinuse")
        if ringinuse is None and general is not None:
            ringinuse = general.get("ringinuse")
        if ringinuse is None or ringinuse[0].lower() not in ("no", "false", "0", "off"):
            out.append(
                Finding(
                    name,
                    ringinuse[1] if ringinuse else sec.line,
                    f"[{queue.name}] may ring a seat that is already on a call (ringinuse "
                    f"{'is ' + ringinuse[0] if ringinuse else 'defaults to yes'})",
                    "set ringinuse = no",
                )
            )
        autopause = _resolved(sections, sec, "autopause")
        if autopause is None and general is not None:
            autopause = general.get("autopause")
        if autopause is not None and autopause[0].lower() not in ("no", "false", "0", "off"):
            out.append(
                Finding(
                    name,
                    autopause[1],
                    f"[{queue.name}] autopause = {autopause[0]}: app_queue pauses a seat on its "
                    "own after a missed call, beside ctid's `rna` pause after repeated misses",
                    "set autopause = no",
                )
            )
        for value_, line_ in _collect_members(sections, sec):
            iface = value_.split(",")[0].strip()
            out.append(
                Finding(
                    name,
                    line_,
                    f"[{queue.name}] has a static member {iface}: ctid owns queue membership "
                    "(QueueAdd/QueueRemove from the roster) and cannot remove a static member "
                    "(`Member not dynamic`)",
                    f"delete the line `member => {value_}`",
                )
            )
    return out


def _collect_members(sections: list[_Section], sec: _Section) -> Iterable[tuple[str, int]]:
    by_name = {s.name: s for s in sections}
    for tmpl in sec.templates:
        parent = by_name.get(tmpl)
        if parent is not None:
            yield from _collect_members(sections, parent)
    yield from sec.all("member")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_LISTEN_IN_CONTEXTS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "ctid-spy",
        re.compile(r"Dial\(\s*Local/\$\{EXTEN\}@ctid-spy-run/n", re.IGNORECASE),
        "exten => _spy.,1,Dial(Local/${EXTEN}@ctid-spy-run/n)",
    ),
    (
        "ctid-spy-run",
        re.compile(r"ChanSpy\(\s*\$\{CTID_SPY_CHANNEL\}\s*,\s*\$\{CTID_SPY_OPTIONS\}", re.I),
        "exten => _spy.,1,ChanSpy(${CTID_SPY_CHANNEL},${CTID_SPY_OPTIONS})",
    ),
)
"""Listen-in: the phone Dials a Local channel whose ;2 runs ChanSpy (see `ctid.calls.spy`)."""


def _check_listen_in(name: str, sections: list[_Section]) -> list[Finding]:
    out: list[Finding] = []
    by_name = {s.name: s for s in sections}
    for context, wanted, fix in _LISTEN_IN_CONTEXTS:
        sec = by_name.get(context)
        lines = [] if sec is None else [v for k, v, _n in sec.items if k in ("exten", "same")]
        if sec is None:
            out.append(
                Finding(name, 0, f"no [{context}] context: supervisors cannot listen in", fix)
            )
        elif not any(v.lstrip().startswith("_spy.") for v in lines) or not any(
            wanted.search(v) for v in lines
        ):
            out.append(
                Finding(
                    name,
                    sec.line,
                    f"[{context}] does not run ctid's listen-in step for spy<session> extensions",
                    fix,
                )
            )
    return out


def check_extensions(path: Path, cfg: Config) -> list[Finding]:
    name = path.name
    sections = _parse(path)
    out: list[Finding] = _check_listen_in(name, sections)
    agi_lines: list[tuple[_Section, str, int]] = []
    for sec in sections:
        for key, value, line in sec.items:
            if key in ("exten", "same") and _AGI_URL.search(value):
                agi_lines.append((sec, value, line))
    if not agi_lines:
        out.append(
            Finding(
                name,
                0,
                "no extension calls ctid's IVR (AGI(agi://…/ivr))",
                f"in the hotline context: Set(CTID_QUEUE={cfg.ivr.default_queue}), "
                f"AGI(agi://{cfg.agi.listen_host}:{cfg.agi.listen_port}/ivr), Queue(${{CTID_QUEUE}})",
            )
        )
        return out
    queue_names = {q.name for q in cfg.queues}
    for sec, value, line in agi_lines:
        m = _AGI_URL.search(value)
        assert m is not None
        port = int(m.group(2) or 4573)
        if port != cfg.agi.listen_port:
            out.append(
                Finding(
                    name,
                    line,
                    f"[{sec.name}] calls FastAGI on port {port} but ctid listens on "
                    f"{cfg.agi.listen_port}",
                    f"use agi://{cfg.agi.listen_host}:{cfg.agi.listen_port}/{m.group(3)}",
                )
            )
        if m.group(3) != "ivr":
            continue  # e.g. the keypad survey after the queue: only the port matters there
        before = [(v, n) for k, v, n in sec.items if k in ("exten", "same") and n < line]
        after = [(v, n) for k, v, n in sec.items if k in ("exten", "same") and n > line]
        defaults = [(_SET_QUEUE.search(v), n) for v, n in before]
        default = next(((d.group(1).strip(), n) for d, n in reversed(defaults) if d), None)
        if default is None:
            out.append(
                Finding(
                    name,
                    line,
                    f"[{sec.name}] has no fail-open default before the AGI: if ctid is down the "
                    "caller reaches no queue",
                    f"add `same => n,Set(CTID_QUEUE={cfg.ivr.default_queue})` before the AGI line",
                )
            )
        elif default[0] not in queue_names:
            out.append(
                Finding(
                    name,
                    default[1],
                    f"[{sec.name}] fail-open default queue {default[0]!r} is not one of ctid's "
                    f"queues ({', '.join(sorted(queue_names))})",
                    f"Set(CTID_QUEUE={cfg.ivr.default_queue})",
                )
            )
        if not any(_QUEUE_APP.search(v) for v, _n in after):
            out.append(
                Finding(
                    name,
                    line,
                    f"[{sec.name}] never runs Queue(${{CTID_QUEUE}}) after the AGI, so ctid's "
                    "routing decision is ignored",
                    "add `same => n,Queue(${CTID_QUEUE},,,,120)` after the AGI line",
                )
            )
    return out


def check_manager(path: Path, cfg: Config) -> list[Finding]:
    name = path.name
    out: list[Finding] = []
    sections = _parse(path)
    general = next((s for s in sections if s.name == "general"), None)
    if general is not None:
        enabled = general.get("enabled")
        if enabled is None or enabled[0].lower() not in ("yes", "true", "1", "on"):
            out.append(
                Finding(
                    name,
                    enabled[1] if enabled else general.line,
                    "AMI is not enabled",
                    "set enabled = yes in [general]",
                )
            )
        port = general.get("port")
        if port is not None and port[0].isdigit() and int(port[0]) != cfg.ami.port:
            out.append(
                Finding(
                    name,
                    port[1],
                    f"AMI listens on port {port[0]}, ctid connects to {cfg.ami.port}",
                    f"set [ami] port = {port[0]} in ctid's config",
                )
            )
        ts = general.get("timestampevents")
        if ts is None or ts[0].lower() not in ("yes", "true", "1", "on"):
            out.append(
                Finding(
                    name,
                    ts[1] if ts else general.line,
                    "events carry no Timestamp header, so ctid times rings by arrival",
                    "set timestampevents = yes in [general]",
                )
            )
    user = next((s for s in sections if s.name == cfg.ami.username), None)
    if user is None:
        out.append(
            Finding(
                name,
                0,
                f"no AMI user [{cfg.ami.username}] (ctid's [ami] username)",
                f"add [{cfg.ami.username}] from contrib/asterisk/manager.conf",
            )
        )
        return out
    read = _split_perms(" ,".join(v for v, _ in user.all("read")))
    write = _split_perms(" ,".join(v for v, _ in user.all("write")))
    read_line = user.get("read")
    write_line = user.get("write")
    if "all" not in read:
        for need, alts in READ_NEEDS.items():
            if not read & set(alts):
                out.append(
                    Finding(
                        name,
                        read_line[1] if read_line else user.line,
                        f"[{cfg.ami.username}] cannot read {need} events",
                        f"add {need} to read =",
                    )
                )
    if "all" not in write:
        for what, alts in WRITE_NEEDS.items():
            if not write & set(alts):
                out.append(
                    Finding(
                        name,
                        write_line[1] if write_line else user.line,
                        f"[{cfg.ami.username}] may not send {what}",
                        f"add {alts[-1]} to write =",
                    )
                )
    return out


def check_pjsip(path: Path, cfg: Config) -> list[Finding]:
    """Every PJSIP seat and supervisor phone is an endpoint whose `aors` name an AOR section."""
    name = path.name
    out: list[Finding] = []
    sections = [s for s in _parse(path) if not s.is_template]

    def typed(kind: str) -> dict[str, _Section]:
        found: dict[str, _Section] = {}
        for sec in sections:
            value = _resolved(sections, sec, "type")
            if value is not None and value[0].lower() == kind:
                found.setdefault(sec.name, sec)
        return found

    endpoints, aors = typed("endpoint"), typed("aor")
    phones = [(f"seat {s.id}", s.interface) for s in cfg.seats]
    phones += [(f"supervisor {p.employee_id}", p.phone) for p in cfg.supervisors]
    for who, iface in phones:
        tech, _, rest = iface.partition("/")
        if tech.upper() != "PJSIP":
            continue  # Local/… and other technologies are not pjsip.conf's business
        endpoint = rest.split("/", 1)[0]
        sec = endpoints.get(endpoint)
        if sec is None:
            out.append(
                Finding(
                    name,
                    0,
                    f"{who} rings {iface}, but there is no [{endpoint}] with type = endpoint",
                    f"add an endpoint [{endpoint}] (with auth and aor) from "
                    "contrib/asterisk/pjsip.conf",
                )
            )
            continue
        listed = _resolved(sections, sec, "aors")
        names = [a.strip() for a in listed[0].split(",") if a.strip()] if listed else []
        if not names:
            out.append(
                Finding(
                    name,
                    sec.line,
                    f"endpoint [{endpoint}] ({who}) has no aors =, so Asterisk cannot reach it",
                    f"set aors = {endpoint} and add [{endpoint}] with type = aor",
                )
            )
            continue
        for aor in names:
            if aor not in aors:
                out.append(
                    Finding(
                        name,
                        listed[1] if listed else sec.line,
                        f"endpoint [{endpoint}] ({who}) names AOR {aor!r}, which is not a "
                        "type = aor section",
                        f"add [{aor}] with type = aor and max_contacts = 1",
                    )
                )
    return out


def placeholder_secrets(path: Path) -> list[str]:
    """`secret`/`password` values still set to the shipped `CHANGE-ME…` placeholders."""
    out: list[str] = []
    for sec in _parse(path):
        for key, value, line in sec.items:
            if key.lower() in ("secret", "password") and value.lower().startswith(_PLACEHOLDER):
                out.append(
                    f"{path.name}:{line}: [{sec.name}] {key} is the placeholder {value!r} — "
                    "set a real one before the PBX faces a network"
                )
    return out


@dataclass(frozen=True)
class DoctorReport:
    """`findings` make the check fail (exit 1); `warnings` are printed and leave it alone."""

    findings: list[Finding]
    warnings: list[str]


def run_doctor(asterisk_dir: Path, cfg: Config, *, sounds_dir: Path | None = None) -> DoctorReport:
    """Every finding for the .conf files in `asterisk_dir` (and the prompts under `sounds_dir`);
    no findings means consistent."""
    findings: list[Finding] = []
    warnings: list[str] = []
    checks: list[tuple[str, Any]] = [
        ("manager.conf", check_manager),
        ("queues.conf", check_queues),
        ("extensions.conf", check_extensions),
        ("pjsip.conf", check_pjsip),
    ]
    if not asterisk_dir.is_dir():
        findings.append(
            Finding(
                str(asterisk_dir),
                0,
                "is not a directory",
                "pass the PBX's configuration directory with --asterisk-dir",
            )
        )
        checks = []
    for filename, check in checks:
        path = asterisk_dir / filename
        if not path.is_file():
            findings.append(
                Finding(
                    filename,
                    0,
                    f"not found in {asterisk_dir}",
                    f"install contrib/asterisk/{filename} (see README)",
                )
            )
            continue
        try:
            findings.extend(check(path, cfg))
            if filename in ("manager.conf", "pjsip.conf"):
                warnings.extend(placeholder_secrets(path))
        except ParseError as exc:
            line, message = (*exc.args, 0, "")[:2]
            findings.append(
                Finding(
                    filename, int(line or 0), f"cannot be parsed: {message}", "correct the syntax"
                )
            )
        except (OSError, UnicodeError) as exc:
            findings.append(Finding(filename, 0, f"cannot be read: {exc}", "check permissions"))
    if sounds_dir is not None:
        findings.extend(check_sounds_dir(sounds_dir, cfg))
    return DoctorReport(findings, warnings)


def check_sounds_dir(sounds_dir: Path, cfg: Config) -> list[Finding]:
    """Every configured prompt is playable under `sounds_dir`, and a caller who presses nothing
    reaches a queue within `ivr.no_input_max_s` with those prompts' real lengths."""
    if not sounds_dir.is_dir():
        return [
            Finding(
                str(sounds_dir),
                0,
                "is not a directory",
                "ctid prompts install --dest DIR, then pass that DIR with --sounds-dir",
            )
        ]
    out = [
        Finding(
            str(p.path),
            0,
            f"{p.problem} (ivr.prompts.{_config_key(p.prompt.key)})",
            "ctid prompts install --dest DIR, or record it",
        )
        for p in check_sounds(cfg, sounds_dir)
    ]
    path_s = cfg.ivr.no_input_path_s(
        prompt_seconds(cfg, sounds_dir), overflow=cfg.lunch.allow_overflow
    )
    if path_s > cfg.ivr.no_input_max_s:
        out.append(
            Finding(
                str(sounds_dir),
                0,
                f"a caller who presses nothing reaches a queue after {path_s:.1f} s with these "
                f"prompts, over ivr.no_input_max_s = {cfg.ivr.no_input_max_s:g}",
                "shorten the welcome/menu prompts, or lower ivr.digit_timeout_s or "
                "ivr.silence_replays",
            )
        )
    return out


def _config_key(key: str) -> str:
    return "incident_status_prefix" if key.startswith("status-") else key
