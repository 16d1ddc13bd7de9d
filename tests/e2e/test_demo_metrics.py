"""`ctid demo` as ops meet it: the real command's banner names /metrics, and a scrape of it (like
`curl`) answers Prometheus text with ctid's metrics."""

from __future__ import annotations

import asyncio
import signal
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

BOUND_S = 120.0

EXPECTED = {
    "ctid_calls_offered",
    "ctid_calls_answered",
    "ctid_calls_abandoned",
    "ctid_calls_ended",
    "ctid_ring_cuts",
    "ctid_ring_misses",
    "ctid_auto_pauses",
    "ctid_talk_cap_warnings",
    "ctid_talk_cap_actions",
    "ctid_ami_up",
    "ctid_ami_reconnects",
    "ctid_ami_events",
    "ctid_ami_action_errors",
    "ctid_event_loop_lag_seconds",
    "ctid_pop_latency_seconds",
    "ctid_websocket_clients",
    "ctid_bus_backlog",
    "ctid_db_write_backlog",
    "ctid_mail_outbox_depth",
    "ctid_mail_outbox_failed",
    "ctid_mail_sent",
    "ctid_mail_failures",
    "ctid_queue_log_position_bytes",
    "ctid_queue_log_behind_bytes",
    "ctid_queue_log_lag_seconds",
    "ctid_queue_log_reconciles",
}


def fetch(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return int(resp.status), resp.headers["Content-Type"], resp.read().decode("utf-8")


async def test_the_demo_serves_metrics() -> None:
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
    assert proc.stdout is not None
    banner: list[str] = []
    try:
        async with asyncio.timeout(BOUND_S):
            while not banner or "Stop with Ctrl-C" not in banner[-1]:
                line = await proc.stdout.readline()
                assert line, "demo exited before printing its banner"
                banner.append(line.decode())
        metrics_line = next(line for line in banner if line.strip().startswith("metrics "))
        url = metrics_line.split()[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        status, content_type, text = await asyncio.to_thread(fetch, url)
        assert status == 200
        assert content_type.startswith("text/plain; version=")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert sorted(EXPECTED - set(families)) == []
        assert families["ctid_pop_latency_seconds"].type == "histogram"
        assert families["ctid_calls_offered"].type == "counter"
        seats = {s.labels["seat"] for s in families["ctid_ring_cuts"].samples}
        assert seats == {"seat1", "seat2", "seat3", "seat4"}
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(BOUND_S):
            await proc.communicate()
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
