"""The daemon with `[asterisk] queue_log`: on start it completes the records from the calls the
log holds (ctid was not running for them), then follows the file as Asterisk appends to it; the
recorded restart's lost call is closed honestly; nothing is written twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import running_desk
from tests.paths import TRANSCRIPTS

pytestmark = pytest.mark.looptime(noop_cycles=20_000)

PJSIP = TRANSCRIPTS / "pjsip"


async def test_the_daemon_reconciles_on_start_and_follows_the_log(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_bytes(
        (PJSIP / "pjsip_answered.queue_log").read_bytes()
        + (PJSIP / "pjsip_abandon_in_queue.queue_log").read_bytes()
    )
    async with running_desk(
        tmp_path, asterisk={"queue_log": str(log), "queue_log_poll_s": 2.0}
    ) as desk:
        await desk.wait_for(lambda: len(desk.rows("SELECT * FROM calls")) == 2)
        rows = desk.rows(
            "SELECT call_id, outcome, answered_by_seat, talk_s FROM calls ORDER BY started_at"
        )
        assert [tuple(r) for r in rows] == [
            ("1796492741.0", "answered", "seat1", 10.0),
            ("1796492934.0", "abandoned_in_queue", None, None),
        ]
        # Asterisk appends: a restart during a talking call, then a new call.
        with log.open("ab") as fh:
            fh.write((PJSIP / "pjsip_pbx_restart.queue_log").read_bytes())
        await desk.wait_for(lambda: len(desk.rows("SELECT * FROM calls")) == 4)
        outcomes = {
            r["call_id"]: (r["outcome"], r["talk_s"], r["ended_at"])
            for r in desk.rows("SELECT * FROM calls")
        }
        assert outcomes["1796492983.2"] == ("lost_by_pbx", None, None)
        assert outcomes["1796492994.0"][:2] == ("answered", 8.0)
        incidents = desk.incidents()
        assert len(incidents) == 3  # the answered, the lost (it was answered) and the new one
        assert all("recovered" in inc["flags"] for inc in incidents)
        callbacks = desk.rows("SELECT call_id, reason FROM callbacks")
        assert [tuple(r) for r in callbacks] == [("1796492934.0", "abandoned")]
        pos = desk.rows("SELECT inode, offset FROM queue_log_positions")
        assert [tuple(r) for r in pos] == [(log.stat().st_ino, log.stat().st_size)]
        assert desk.daemon.queue_log is not None
        again = await desk.daemon.queue_log.reconcile_now()
        assert (again.added, again.completed, again.incidents) == ([], [], [])
