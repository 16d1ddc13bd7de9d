"""The systemd unit as shipped (`systemd-analyze verify`), and `ctid run` under a real
NOTIFY_SOCKET: READY=1 only once AMI is logged in and resynced, WATCHDOG=1 keeps coming from the
loop, SIGHUP reloads what it can and names what needs a restart, STOPPING=1 on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ctid.app.demo import demo_raw, to_toml
from ctid.asterisk.simulator import PbxSimulator
from ctid.config import parse_config
from ctid.db import create_engine, upgrade
from tests.e2e.harness import free_port

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "contrib" / "systemd" / "ctid.service"
BOUND_S = 120.0


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        reason = "systemd-analyze is not installed (.ci/run installs Debian's systemd package)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = _systemd_analyze()
    # verify insists the executables exist: point the unit at this environment's ctid.
    ctid = shutil.which("ctid") or str(Path(sys.executable).with_name("ctid"))
    if not Path(ctid).exists():
        stub = tmp_path / "ctid"
        stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        stub.chmod(0o755)
        ctid = str(stub)
    unit = tmp_path / "ctid.service"
    unit.write_text(
        UNIT.read_text(encoding="utf-8").replace("/usr/local/bin/ctid", ctid), encoding="utf-8"
    )
    proc = subprocess.run(
        [tool, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # Unknown or misspelt keys are only warnings: none is allowed either.
    assert proc.stderr.strip() == "", proc.stderr
    assert proc.stdout.strip() == "", proc.stdout


def test_unit_runs_hardened_under_its_own_user() -> None:
    s = _unit_settings()
    assert s["Type"] == ["notify"]
    assert s["Restart"] == ["on-failure"]
    assert int(s["WatchdogSec"][0]) > 0
    assert s["User"] == ["ctid"]
    assert s["StateDirectory"] == ["ctid"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"]
    assert s["RestartPreventExitStatus"] == ["78"]


# --------------------------------------------------------------------------- NOTIFY_SOCKET


class Output:
    """The daemon's stderr (JSON log lines), collected as it comes."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = asyncio.Event()

    async def pump(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append(line.decode(errors="replace"))
            self.changed.set()

    def events(self) -> list[str]:
        out = []
        for line in self.lines:
            with contextlib.suppress(ValueError):
                out.append(str(json.loads(line).get("event")))
        return out

    async def wait_event(self, name: str) -> dict[str, object]:
        async with asyncio.timeout(BOUND_S):
            while True:
                for line in self.lines:
                    with contextlib.suppress(ValueError):
                        data = json.loads(line)
                        if data.get("event") == name:
                            return dict(data)
                self.changed.clear()
                await self.changed.wait()


class Notifications:
    """Datagrams systemd would get, in arrival order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.messages: list[str] = []
        self.changed = asyncio.Event()

    async def pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 4096)
            self.messages.append(data.decode())
            self.changed.set()

    def fields(self) -> list[str]:
        return [f for m in self.messages for f in m.splitlines()]

    async def wait_for(self, field: str, count: int = 1, after: int = 0) -> None:
        async with asyncio.timeout(BOUND_S):
            while self.fields()[after:].count(field) < count:
                self.changed.clear()
                await self.changed.wait()

    async def wait_prefix(self, prefix: str) -> None:
        async with asyncio.timeout(BOUND_S):
            while not any(f.startswith(prefix) for f in self.fields()):
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def running_ctid(tmp_path: Path) -> AsyncIterator[tuple[PbxSimulator, dict[str, object]]]:
    """The simulator (refusing logins) and what `ctid run` needs: a migrated database and a
    config file with the simulator's AMI port."""
    agi_port, web_port = free_port(), free_port()
    data = tmp_path / "var"
    probe = parse_config(demo_raw(data, web_port=web_port, agi_port=agi_port, ami_port=5038))
    sim = PbxSimulator.from_ctid_config(probe, agi_port=agi_port)
    sim.refuse_logins(True)
    async with sim:
        raw = demo_raw(data, web_port=web_port, agi_port=agi_port, ami_port=sim.ami_port)
        engine = create_engine(parse_config(raw).database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        yield sim, raw


async def test_ready_after_ami_resync_then_watchdog_reload_and_stop(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.setblocking(False)
    notes = Notifications(sock)
    out = Output()
    async with running_ctid(tmp_path) as (sim, raw):
        config = tmp_path / "ctid.toml"
        config.write_text(to_toml(raw), encoding="utf-8")
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(notify_path),
            "WATCHDOG_USEC": "1000000",  # 1 s: pinged every 0.5 s
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ctid.cli",
            "run",
            "-c",
            str(config),
            "--log-format",
            "json",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        pumps = [asyncio.create_task(notes.pump()), asyncio.create_task(out.pump(proc.stderr))]
        try:
            # Up, but the PBX refuses the login: not ready, though the watchdog is fed.
            await notes.wait_prefix("STATUS=database checked, web up; waiting for AMI")
            await out.wait_event("ami_login_failed")
            await notes.wait_for("WATCHDOG=1")
            assert "READY=1" not in notes.fields()

            sim.refuse_logins(False)
            await notes.wait_for("READY=1")
            assert "ami_logged_in" in out.events()
            # What start-up built is frozen at READY; the catalogs and Babel's locale data, read
            # in a thread after it, are frozen in turn (the collector's full passes skip them).
            ready = await out.wait_event("ctid_ready")
            loaded = await out.wait_event("ctid_languages_loaded")
            assert loaded["gc_frozen"] > ready["gc_frozen"] > 0
            web = raw["web"]
            assert isinstance(web, dict)
            url = f"{web['public_url']}/healthz"
            status = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=30).status)
            assert status == 200

            # The watchdog keeps coming after READY=1.
            ready_at = notes.fields().index("READY=1")
            await notes.wait_for("WATCHDOG=1", count=3, after=ready_at)

            # SIGHUP: the IVR menu is applied, the ring rule needs a restart.
            raw["ivr"] = {
                "options": [{"digit": "1", "action": "queue", "label": "help", "queue": "ordinary"}]
            }
            raw["ring"] = {"max_rings": 4}
            config.write_text(to_toml(raw), encoding="utf-8")
            proc.send_signal(signal.SIGHUP)
            reloaded = await out.wait_event("config_reloaded")
            assert reloaded["applied"] == ["ivr"]
            restart = await out.wait_event("config_change_needs_restart")
            assert restart["sections"] == ["ring"]

            # A config that does not load changes nothing and the daemon stays up.
            raw["ring"] = {"max_rings": "x"}
            config.write_text(to_toml(raw), encoding="utf-8")
            proc.send_signal(signal.SIGHUP)
            refused = await out.wait_event("config_reload_refused")
            assert "max_rings" in str(refused["problem"])
            assert proc.returncode is None

            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(BOUND_S):
                code = await proc.wait()
            assert code == 0, "".join(out.lines[-20:])
            await notes.wait_for("STOPPING=1")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            for p in pumps:
                p.cancel()
            sock.close()


def test_plan_reload_takes_reloadable_sections_only(tmp_path: Path) -> None:
    from ctid.app.reload import plan_reload

    raw = demo_raw(tmp_path, web_port=8080, agi_port=4573, ami_port=5038)
    old = parse_config(raw)
    raw["hours"] = {**raw["hours"], "open": "07:00"}
    raw["ami"] = {**raw["ami"], "port": 6038}
    merged, report = plan_reload(old, parse_config(raw))
    assert report.applied == ["hours"]
    assert report.needs_restart == ["ami"]
    assert merged.hours.open.hour == 7
    assert merged.ami.port == 5038  # kept until a restart


async def test_notifier_reaches_an_abstract_socket() -> None:
    from ctid.app.systemd import Notifier

    name = f"ctid-test-{os.getpid()}-{id(object())}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "4000000"})
        assert notifier.watchdog_s == 4.0
        notifier.notify("READY=1", "STATUS=ok")
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 4096), BOUND_S)
        assert data == b"READY=1\nSTATUS=ok"
        notifier.close()
        # Not under systemd: nothing is sent and nothing fails.
        quiet = Notifier({})
        assert not quiet.enabled
        quiet.notify("READY=1")
        # A watchdog meant for another process is not ours to feed.
        assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_s is None
    finally:
        sock.close()
