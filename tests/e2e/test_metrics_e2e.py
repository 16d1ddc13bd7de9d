"""`/metrics` on the running daemon against the PBX simulator, scraped over HTTP and parsed with
prometheus_client's own parser: the call counters move with real calls, the gauges read the
daemon's parts, and scrape access follows `[metrics]` (allow-list, bearer token, disabled)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ctid.core.errors import AmiActionError
from tests.e2e.harness import Desk, running_desk
from tests.paths import TRANSCRIPTS

pytestmark = pytest.mark.looptime(noop_cycles=20_000)

PJSIP = TRANSCRIPTS / "pjsip"
TOKEN = "scrape-token-0123456789abcdef"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(desk: Desk, headers: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    url = str(desk.daemon.web.public_url).rstrip("/") + "/metrics"
    # No client-side time limit: the loop clock is fake, the test's bounds are asyncio's.
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http,
        http.get(url, headers=dict(headers or {})) as resp,
    ):
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def samples(desk: Desk) -> Samples:
    status, content_type, text = await scrape(desk)
    assert status == 200, text
    assert content_type.startswith("text/plain; version=")
    return parse(text)


def value(s: Samples, name: str, **labels: str) -> float:
    return s[(name, tuple(sorted(labels.items())))]


async def test_counters_and_gauges_move_with_real_calls(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_bytes((PJSIP / "pjsip_answered.queue_log").read_bytes())
    # A poll far beyond the test: only the start, the login poke and our poke read the file.
    queue_log = {"queue_log": str(log), "queue_log_poll_s": 86400.0}
    async with running_desk(tmp_path, asterisk=queue_log) as desk:
        follower = desk.daemon.queue_log
        assert follower is not None
        await desk.wait_for(lambda: follower.runs >= 2)  # the start and the first login
        before = await samples(desk)
        assert value(before, "ctid_calls_offered_total") == 0
        assert value(before, "ctid_ring_cuts_total", seat="seat1") == 0
        assert value(before, "ctid_ami_up") == 1
        assert value(before, "ctid_queue_log_position_bytes") == log.stat().st_size
        assert value(before, "ctid_queue_log_behind_bytes") == 0
        assert value(before, "ctid_queue_log_lag_seconds") == 0

        # Asterisk appends a call; until the follower reads it, the metrics show it unread.
        added = (PJSIP / "pjsip_abandon_in_queue.queue_log").read_bytes()
        with log.open("ab") as fh:
            fh.write(added)
        unread = await samples(desk)
        assert value(unread, "ctid_queue_log_behind_bytes") == len(added)
        assert value(unread, "ctid_queue_log_lag_seconds") >= 0
        follower.poke()
        await desk.wait_for(lambda: follower.runs >= 3)

        # Answered after seat1 let it ring past three rings (cut), and one abandoned in queue.
        desk.sim.set_phone("seat1", answer_after_s=None)
        desk.sim.set_phone("seat2", answer_after_s=3, talk_s=10)
        desk.sim.set_rr_position("ordinary", 0)
        answered = desk.sim.place_call("13800138000", "Zhang San", digits="1")
        await desk.wait_for(answered.ended.is_set)
        await desk.call_row(answered.linkedid)
        desk.sim.set_phone("seat2", answer_after_s=None)
        abandoned = desk.sim.place_call("13900001111", "李娜", digits="1", hangup_after_s=10)
        await desk.wait_for(abandoned.ended.is_set)
        await desk.call_row(abandoned.linkedid)
        with pytest.raises(AmiActionError):
            await desk.daemon.pbx.hang_up("PJSIP/nobody-00000001")

        after = await samples(desk)
        assert answered.rang[:2] == ["seat1", "seat2"]
        assert value(after, "ctid_calls_offered_total") == 2
        assert value(after, "ctid_calls_answered_total") == 1
        assert value(after, "ctid_calls_abandoned_total") == 1
        assert value(after, "ctid_calls_ended_total", outcome="abandoned_in_queue") == 1
        assert value(after, "ctid_ring_cuts_total", seat="seat1") == 1
        assert value(after, "ctid_ring_cuts_total", seat="seat2") == 0
        assert value(after, "ctid_ring_misses_total", seat="seat1") == 1
        assert value(after, "ctid_ami_events_total") > value(before, "ctid_ami_events_total")
        assert value(after, "ctid_ami_action_errors_total", action="Hangup") == 1
        assert value(after, "ctid_ami_reconnects_total") == 0
        # Every AgentCalled the PBX sent became a ringing pop whose latency was measured.
        rings = len(answered.rang) + len(abandoned.rang)
        assert value(after, "ctid_pop_latency_seconds_count") == rings
        assert value(after, "ctid_event_loop_lag_seconds_count") > 0
        assert value(after, "ctid_websocket_clients") == 0
        assert ("ctid_db_write_backlog", (("queue", "journal"),)) in after
        assert value(after, "ctid_mail_outbox_depth") == 0
        assert value(after, "ctid_queue_log_behind_bytes") == 0
        assert value(after, "ctid_queue_log_lag_seconds") == 0
        assert value(after, "ctid_queue_log_position_bytes") == log.stat().st_size
        assert value(after, "ctid_queue_log_reconciles_total") == 3


async def test_scrape_access_follows_the_allow_list_and_the_token(tmp_path: Path) -> None:
    metrics = {"allow": ["10.0.0.0/8"], "token": TOKEN}
    web = {"trusted_proxies": ["127.0.0.1/32"]}
    async with running_desk(tmp_path, metrics=metrics, web=web) as desk:
        status, _, body = await scrape(desk)  # 127.0.0.1 is not in the allow-list
        assert status == 403
        assert "ctid_" not in body
        assert (await scrape(desk, {"Authorization": "Bearer wrong-token-0123456789"}))[0] == 403
        assert (await scrape(desk, {"X-Forwarded-For": "192.0.2.7"}))[0] == 403
        status, _, body = await scrape(desk, {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
        assert value(parse(body), "ctid_ami_up") == 1
        # Through a trusted proxy, the client it names is the one the allow-list judges.
        status, _, body = await scrape(desk, {"X-Forwarded-For": "10.1.2.3"})
        assert status == 200
        assert ("ctid_calls_offered_total", ()) in parse(body)


async def test_disabled_metrics_are_not_served(tmp_path: Path) -> None:
    async with running_desk(tmp_path, metrics={"enabled": False}) as desk:
        status, _, _ = await scrape(desk)
        assert status == 404
