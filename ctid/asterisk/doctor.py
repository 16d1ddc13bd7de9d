"""`ctid doctor`: lint the PBX's .conf files (parsed with pyst2's config parser) against ctid's config.

Each finding names the file, the line where it can be seen, what is wrong and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asterisk.config import Config as PystConfig
from asterisk.config import ParseError

from ctid.config import Config

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


def check_queues(path: Path, cfg: Config) -> list[Finding]:
    name = path.name
    out: list[Finding] = []
    sections = _parse(path)
    general = next((s for s in sections if s.name == "general"), None)
    by_name = {s.name: s for s in sections if not s.is_template}
    deadline = cfg.ring.deadline_s
    for queue in cfg.queues:
        sec = by_name.get(queue.name)
        if sec is None:
            out.append(
                Finding(
                    name,
                    0,
                    f"queue [{queue.name}] (ctid's queues) is not defined",
                    f"add a [{queue.name}] section with timeout = {deadline:g}, ringinuse = no",
                )
            )
            continue
        timeout = _resolved(sections, sec, "timeout")
        value = float(timeout[0]) if timeout and _is_number(timeout[0]) else 15.0
        line = timeout[1] if timeout else sec.line
        if abs(value - deadline) > 1e-6:
            out.append(
                Finding(
                    name,
                    line,
                    f"[{queue.name}] rings a seat for {value:g} s but the three-ring deadline is "
                    f"{deadline:g} s ({cfg.ring.max_rings} x {cfg.ring.ring_cadence_s:g} s)",
                    f"set timeout = {deadline:g}",
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
        members: dict[str, tuple[int, int]] = {}
        for value_, line_ in _collect_members(sections, sec):
            parts = [p.strip() for p in value_.split(",")]
            penalty = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            members[parts[0]] = (penalty, line_)
        if not members:
            continue  # dynamic membership: ctid adds the seats with QueueAdd
        expected = {s.interface: queue.tiers[s.tier] for s in cfg.seats if s.tier in queue.tiers}
        for iface, penalty in expected.items():
            if iface not in members:
                out.append(
                    Finding(
                        name,
                        sec.line,
                        f"[{queue.name}] lacks member {iface} (a configured "
                        f"{'/'.join(t for t in queue.tiers)} seat)",
                        f"add member => {iface},{penalty}",
                    )
                )
            elif members[iface][0] != penalty:
                out.append(
                    Finding(
                        name,
                        members[iface][1],
                        f"[{queue.name}] member {iface} has penalty {members[iface][0]}, ctid's "
                        f"config says {penalty}",
                        f"set member => {iface},{penalty}",
                    )
                )
        for iface, (_p, line_) in members.items():
            if iface not in expected:
                out.append(
                    Finding(
                        name,
                        line_,
                        f"[{queue.name}] member {iface} is not a seat of this queue in ctid's config",
                        "remove it, or add the seat to ctid's [[seats]]",
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


def check_extensions(path: Path, cfg: Config) -> list[Finding]:
    name = path.name
    out: list[Finding] = []
    sections = _parse(path)
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


def run_doctor(asterisk_dir: Path, cfg: Config) -> list[Finding]:
    """Every finding for the .conf files in `asterisk_dir`; an empty list means consistent."""
    findings: list[Finding] = []
    checks: list[tuple[str, Any]] = [
        ("manager.conf", check_manager),
        ("queues.conf", check_queues),
        ("extensions.conf", check_extensions),
    ]
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
        except ParseError as exc:
            line, message = (*exc.args, 0, "")[:2]
            findings.append(
                Finding(
                    filename, int(line or 0), f"cannot be parsed: {message}", "correct the syntax"
                )
            )
        except (OSError, UnicodeError) as exc:
            findings.append(Finding(filename, 0, f"cannot be read: {exc}", "check permissions"))
    return findings
