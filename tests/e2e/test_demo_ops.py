"""The demo as ops and new users meet it: `ctid demo --smoke --write-config` through the real
command (then `ctid users list -c` on the written config), and the demo's mail catcher and
mailbox page with a real dispatch mail whose link opens the accept/reject page."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

from ctid.app.demo import SECOND_LINE_GROUPS, demo_raw, demo_users, to_toml
from ctid.app.demo_mail import MailCatcher
from ctid.config import parse_config
from ctid.tickets.lifecycle import Dispatch
from ctid.web.demo_mailbox import MailboxPage
from tests.e2e.harness import running_desk

BOUND_S = 120.0


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctid.cli", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_smoke_run_writes_a_config_other_commands_use(tmp_path: Path) -> None:
    written = tmp_path / "demo.toml"
    proc = run("demo", "--smoke", "--port", "0", "--write-config", str(written))
    data_dir = None
    try:
        assert proc.returncode == 0, proc.stderr
        assert "smoke ok:" in proc.stdout
        # Logs went to the demo's log file, not over the output.
        assert '"event"' not in proc.stdout + proc.stderr
        raw = tomllib.loads(written.read_text(encoding="utf-8"))
        data_dir = Path(raw["site"]["data_dir"])
        assert (data_dir / "demo.log").stat().st_size > 0
        assert raw["incidents"]["second_line_groups"] == SECOND_LINE_GROUPS

        listed = run("users", "list", "-c", str(written))
        assert listed.returncode == 0, listed.stderr
        ids = [line.split()[0] for line in listed.stdout.splitlines()[2:]]
        assert ids == sorted(u.employee_id for u in demo_users())
        assert run("check-config", str(written)).returncode == 0
        report = run("report", "--from", "2000-01-01", "--to", "2100-12-31", "-c", str(written))
        assert report.returncode == 0, report.stderr
    finally:
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)


def test_written_config_round_trips(tmp_path: Path) -> None:
    raw = demo_raw(tmp_path / "var", web_port=8080, agi_port=4573, ami_port=5038, smtp_port=2525)
    text = to_toml(raw)
    assert tomllib.loads(text) == raw
    assert parse_config(tomllib.loads(text)) == parse_config(raw)


async def test_dispatch_mail_lands_in_the_mailbox_with_a_working_link(tmp_path: Path) -> None:
    async with MailCatcher() as catcher, MailboxPage(catcher.snapshot) as mailbox:
        smtp = {"enabled": True, "port": catcher.port, "from_address": "desk@demo.test"}
        incidents = {"second_line_groups": SECOND_LINE_GROUPS}
        async with running_desk(tmp_path, smtp=smtp, incidents=incidents) as desk:
            store = desk.daemon.incidents
            made = await store.create(
                actor="E1001", summary="VPN drops every hour", owner_seat="seat1"
            )
            await store.apply(made.number, Dispatch(group="network"), actor="E1001")
            async with asyncio.timeout(BOUND_S):
                while not catcher.mails:
                    catcher.arrived.clear()
                    await catcher.arrived.wait()
            mail = catcher.mails[0]
            assert mail.recipients == ("network-team@demo.test",)
            assert made.number in mail.subject
            links = re.findall(r"https?://\S+", mail.body)
            assert links, mail.body

            page = await asyncio.to_thread(
                lambda: urllib.request.urlopen(mailbox.url, timeout=30).read().decode()
            )
            assert "VPN drops every hour" in page or made.number in page
            assert f'<a href="{links[0]}"' in page.replace("&amp;", "&")

            # The link opens the accept/reject page (the configured port 0 is the bound one).
            public = str(desk.daemon.web.public_url).rstrip("/")
            link = re.sub(r"^https?://[^/]+", public, links[0])
            status = await asyncio.to_thread(
                lambda: urllib.request.urlopen(link, timeout=30).status
            )
            assert status == 200


async def test_demo_banner_stays_readable_and_ctrl_c_stops_it() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ctid.cli",
        "demo",
        "--port",
        "0",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    banner: list[str] = []
    try:
        async with asyncio.timeout(BOUND_S):
            while not banner or "Stop with Ctrl-C" not in banner[-1]:
                line = await proc.stdout.readline()
                assert line, "demo exited before printing its banner"
                banner.append(line.decode())
        text = "".join(banner)
        assert "mailbox       http://127.0.0.1:" in text
        assert "logs          " in text and "demo.log" in text
        data_dir = Path(text.split("data (SQLite) ", 1)[1].split()[0])
        assert await asyncio.to_thread(data_dir.is_dir)
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(BOUND_S):
            rest, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        # Nothing but the banner reached the terminal: the logs went to the file.
        assert rest.decode().strip() == ""
        assert '"event"' not in err.decode()
        assert not await asyncio.to_thread(data_dir.exists)  # removed on exit without --keep
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
