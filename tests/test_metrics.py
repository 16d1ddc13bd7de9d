"""ctid.metrics on a real registry: what the call story counts, how pop latency pairs an AgentCalled
with its ringing pop, the scrape-time collector; and the `[metrics]` config's checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ctid.config import load_config
from ctid.core.calls import CallEnded, CallRecord, SeatRingEnded
from ctid.core.effects import AlertSupervisors, NotifySeat, RecordRingMiss
from ctid.core.frames import IdleFrame
from ctid.core.ids import CallId, Channel, QueueName, SeatId
from ctid.metrics import (
    AmiReading,
    CallMetrics,
    MailReading,
    MetricItem,
    PopLatency,
    Readings,
    ServiceCollector,
)
from tests.frames import pop_frame

SEATS = ["seat1", "seat2"]


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def record(outcome: str, *, queued: bool = True) -> CallEnded:
    return CallEnded(
        CallRecord(
            call_id=CallId("1.1"),
            caller_num="13800138000",
            caller_name="",
            queue=QueueName("ordinary") if queued else None,
            ivr_choice="1",
            started_at=100.0,
            queued_at=110.0 if queued else None,
            answered_at=None,
            answered_by=None,
            ended_at=130.0,
            outcome=outcome,  # type: ignore[arg-type]
            ring_attempts=(),
            talk_s=None,
            hold_s=None,
            ended_by="unknown",
            transferred=False,
            variables=(),
        )
    )


CALLS = CallId("1.1")
SEAT = SeatId("seat1")
LEG = Channel("PJSIP/seat1-00000001")

# (what the bus tells, the series that moves by one)
COUNTED: list[tuple[MetricItem, str, dict[str, str]]] = [
    (record("answered"), "ctid_calls_answered_total", {}),
    (record("abandoned_in_queue"), "ctid_calls_abandoned_total", {}),
    (record("unanswered_timeout"), "ctid_calls_offered_total", {}),
    (record("abandoned_in_ivr", queued=False), "ctid_calls_ended_total", {"outcome": "abandoned_in_ivr"}),
    (SeatRingEnded(CALLS, SEAT, LEG, 1.0, "cut", 15.0), "ctid_ring_cuts_total", {"seat": "seat1"}),
    (RecordRingMiss(CALLS, SEAT, 15.0, 1), "ctid_ring_misses_total", {"seat": "seat1"}),
    (AlertSupervisors("auto_pause", "paused", SEAT, CALLS), "ctid_auto_pauses_total", {"seat": "seat1"}),
    (NotifySeat(SEAT, "cap_warning", CALLS, remaining_s=60), "ctid_talk_cap_warnings_total", {}),
    (NotifySeat(SEAT, "cap_reached", CALLS, action="hangup"), "ctid_talk_cap_actions_total", {"action": "hangup"}),
]  # fmt: skip


@pytest.mark.parametrize(("item", "name", "labels"), COUNTED)
def test_the_call_story_moves_its_counter(
    item: MetricItem, name: str, labels: dict[str, str]
) -> None:
    registry = CollectorRegistry()
    calls = CallMetrics(registry, SEATS)
    assert sample(registry, name, **labels) == 0
    calls.on_item(item)
    assert sample(registry, name, **labels) == 1


def test_offered_answered_and_abandoned_add_up() -> None:
    registry = CollectorRegistry()
    calls = CallMetrics(registry, SEATS)
    for outcome in ("answered", "answered", "abandoned_in_queue", "unanswered_timeout"):
        calls.on_item(record(outcome))
    calls.on_item(record("closed_hours"))  # the IVR closed it: never offered
    calls.on_item(record("abandoned_in_ivr", queued=False))
    calls.on_item(SeatRingEnded(CALLS, SEAT, LEG, 1.0, "no_answer", 15.0))  # not a cut
    calls.on_item(AlertSupervisors("ring_miss", "missed", SEAT, CALLS))  # not a pause
    assert sample(registry, "ctid_calls_offered_total") == 4
    assert sample(registry, "ctid_calls_answered_total") == 2
    assert sample(registry, "ctid_calls_abandoned_total") == 1
    assert sample(registry, "ctid_calls_ended_total", outcome="closed_hours") == 1
    assert sample(registry, "ctid_ring_cuts_total", seat="seat1") == 0
    assert sample(registry, "ctid_auto_pauses_total", seat="seat1") == 0


def test_pop_latency_pairs_an_agent_called_with_its_ringing_pop() -> None:
    registry = CollectorRegistry()
    now = [10.0]
    pops = PopLatency(registry, lambda: now[0])
    pops.agent_called("1700000000.1")
    now[0] = 10.004
    idle = IdleFrame(seat="seat1", reason="missed", call_id="1700000000.1")
    pops.frame_published("seat1", idle, 1)
    pops.frame_published("seat1", pop_frame("seat1", "other"), 1)
    pops.frame_published("seat1", pop_frame("seat1", "1700000000.1", state="talking"), 1)
    assert sample(registry, "ctid_pop_latency_seconds_count") == 0
    pops.frame_published("seat1", pop_frame("seat1", "1700000000.1"), 0)
    assert sample(registry, "ctid_pop_latency_seconds_count") == 1
    assert sample(registry, "ctid_pop_latency_seconds_bucket", le="0.005") == 1
    assert sample(registry, "ctid_pop_latency_seconds_bucket", le="0.002") == 0
    # Its later updates (the caller's record loaded) are not a second pop.
    pops.frame_published("seat1", pop_frame("seat1", "1700000000.1"), 0)
    assert sample(registry, "ctid_pop_latency_seconds_count") == 1


async def test_the_collector_reads_at_scrape_time_and_keeps_the_last_reading() -> None:
    registry = CollectorRegistry()
    readings = [
        Readings(
            AmiReading(True, 2, 1234, {"QueueRemove": 3}),
            websocket_clients=5,
            bus_backlog=0,
            write_backlog={"journal": 7},
            mail=MailReading(outbox=4, failed=1, sent=9, failures=2),
        )
    ]

    async def read() -> Readings:
        if not readings:
            raise RuntimeError("the daemon is gone")
        return readings.pop()

    collector = ServiceCollector(registry, read)
    assert sample(registry, "ctid_ami_up") == 0  # nothing read yet
    await collector.refresh()
    await collector.refresh()  # fails: logged, the last reading stays
    text = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["ctid_ami_up"].samples[0].value == 1
    assert sample(registry, "ctid_ami_reconnects_total") == 2
    assert sample(registry, "ctid_ami_events_total") == 1234
    assert sample(registry, "ctid_ami_action_errors_total", action="QueueRemove") == 3
    assert sample(registry, "ctid_websocket_clients") == 5
    assert sample(registry, "ctid_db_write_backlog", queue="journal") == 7
    assert sample(registry, "ctid_mail_outbox_depth") == 4
    assert sample(registry, "ctid_mail_failures_total") == 2
    assert families["ctid_queue_log_lag_seconds"].samples == []  # no queue_log configured


# --------------------------------------------------------------------------- [metrics] config

MINIMAL = """
[ami]
secret = "lab-secret"

[[seats]]
id = "seat1"
name = "Seat 1"
tier = "ordinary"
interface = "PJSIP/seat1"
"""


def _check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "ctid.toml"
    path.write_text(MINIMAL + text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CTID_METRICS_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "ctid.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_metrics_mistakes_are_one_line_each_and_never_echo_the_token(tmp_path: Path) -> None:
    proc = _check(
        tmp_path, '\n[metrics]\nallow = ["10.0.0.0/33", "::1/128"]\ntoken = "short one"\n'
    )
    assert proc.returncode == 78
    lines = proc.stderr.strip().splitlines()
    assert any("metrics.allow: '10.0.0.0/33' is not an IP address or network" in x for x in lines)
    assert any(
        "metrics.token: must be at least 16 printable characters without spaces "
        "(got '9 characters')" in x
        for x in lines
    )
    assert "short one" not in proc.stdout + proc.stderr


def test_nobody_may_scrape_is_refused(tmp_path: Path) -> None:
    proc = _check(tmp_path, "\n[metrics]\nallow = []\n")
    assert proc.returncode == 78
    assert "metrics.allow: is empty and metrics.token is not set" in proc.stderr
    assert _check(tmp_path, "\n[metrics]\nallow = []\nenabled = false\n").returncode == 0


def test_the_token_can_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "ctid.toml"
    path.write_text(MINIMAL + "\n[metrics]\nallow = []\n", encoding="utf-8")
    cfg = load_config(path, env={"CTID_METRICS_TOKEN": "from-the-environment-1234"})
    assert cfg.metrics.token.get_secret_value() == "from-the-environment-1234"
    assert "from-the-environment" not in repr(cfg.metrics)
    assert cfg.metrics.allow == ()
