"""AmiConnection timers on fake loop time (looptime): heartbeat, backoff, action timeouts.

Sockets are real loopback TCP; only the event loop's clock is fast-forwarded when it idles.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from ctid.core.errors import AmiTimeoutError
from tests.asterisk.amifake import FakeAmi, Recorder, config, connection, running, watch_logs

# Extra no-op cycles before looptime jumps the clock, so loopback I/O always lands first.
pytestmark = pytest.mark.looptime(noop_cycles=200)

LONG = 600.0  # a bound in fake seconds; costs no real time


async def test_half_open_link_is_detected_within_two_ping_intervals_then_reconnects() -> None:
    rec = Recorder()
    loop = asyncio.get_running_loop()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port, ping_interval_s=10.0, action_timeout_s=5.0), rec)
        with watch_logs() as logs:
            async with running(conn):
                server = await fake.next_conn()
                await conn.wait_logged_in(LONG)
                assert await rec.next_link(LONG) is True
                # Healthy for a while: pings are answered and the link stays up.
                await asyncio.sleep(95.0)
                assert fake.names().count("Ping") == 9
                assert conn.health().logged_in
                # Now the peer goes silent without closing (half-open).
                server.pong = False
                silent_at = loop.time()
                assert await rec.next_link(LONG) is False
                detected_after = loop.time() - silent_at
                assert detected_after <= 2 * 10.0
                await server.wait_closed(LONG)  # we hung up on it
                await fake.next_conn(LONG)  # and came back
                await conn.wait_logged_in(LONG)
                assert await rec.next_link(LONG) is True
                assert conn.health().reconnects == 1
        lost = logs.of("ami_link_lost")
        assert len(lost) == 1
        assert "Ping" in lost[0]["reason"]


async def test_busy_link_without_pong_is_still_dropped() -> None:
    # Events keep flowing but Pings go unanswered: Asterisk's manager thread is wedged.
    rec = Recorder()
    loop = asyncio.get_running_loop()
    async with FakeAmi(pong=False) as fake:
        conn = connection(config(fake.port, ping_interval_s=10.0), rec)
        async with running(conn):
            server = await fake.next_conn()
            await conn.wait_logged_in(LONG)
            start = loop.time()
            dropped = asyncio.create_task(rec.next_link(LONG))
            assert await rec.next_link(LONG) is True
            while not dropped.done() and loop.time() - start < 60:
                server.write(b"Event: Tick\r\n\r\n")
                await asyncio.sleep(1.0)
            assert dropped.done()
            assert await dropped is False


async def test_reconnect_backoff_is_exponential_jittered_and_capped() -> None:
    rec = Recorder()
    low, high = 1.0, 30.0
    async with FakeAmi(login="reject") as fake:
        conn = connection(config(fake.port, reconnect_min_s=low, reconnect_max_s=high), rec)
        with watch_logs() as logs:
            async with running(conn):
                accepted = [(await fake.next_conn(LONG)).accepted_at for _ in range(9)]
        gaps = [b - a for a, b in itertools.pairwise(accepted)]
        for attempt, gap in enumerate(gaps):
            base = min(high, low * 2**attempt)
            assert max(low, base / 2) - 1e-3 <= gap <= base + 1e-3, (attempt, gaps)
        assert gaps[-1] >= high / 2  # it reached the cap...
        assert max(gaps) <= high + 1e-3  # ...and stayed under it
        assert len({round(g, 3) for g in gaps[3:]}) > 1  # jittered, not a fixed step
        assert logs.count("ami_login_failed") == 1
        delays = [e["delay_s"] for e in logs.of("ami_reconnect_in")][: len(gaps)]
        assert delays == pytest.approx(gaps, abs=1e-2)


async def test_backoff_starts_again_after_a_successful_login() -> None:
    rec = Recorder()
    async with FakeAmi(login="reject") as fake:
        conn = connection(config(fake.port, reconnect_min_s=1.0, reconnect_max_s=30.0), rec)
        async with running(conn):
            for _ in range(5):
                await fake.next_conn(LONG)
            fake.login = "accept"
            server = await fake.next_conn(LONG)
            await conn.wait_logged_in(LONG)
            server.abort()
            lost_at = asyncio.get_running_loop().time()
            again = await fake.next_conn(LONG)
            assert again.accepted_at - lost_at <= 1.0 + 1e-3


async def test_action_timeout_uses_config_and_per_call_override() -> None:
    rec = Recorder()
    loop = asyncio.get_running_loop()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port, action_timeout_s=7.0, ping_interval_s=100.0), rec)
        async with running(conn):
            await fake.next_conn()
            await conn.wait_logged_in(LONG)
            start = loop.time()
            with pytest.raises(AmiTimeoutError, match="QueuePause"):
                await conn.action("QueuePause", {"Queue": "ordinary"})
            assert loop.time() - start == pytest.approx(7.0, abs=0.01)
            start = loop.time()
            with pytest.raises(AmiTimeoutError):
                await conn.list_action("QueueStatus", timeout=2.5)
            assert loop.time() - start == pytest.approx(2.5, abs=0.01)
            assert conn.health().logged_in  # a slow answer is not a lost link


async def test_wait_logged_in_times_out_when_asterisk_is_away() -> None:
    async with FakeAmi() as fake:
        port = fake.port
    conn = connection(config(port, reconnect_min_s=1.0, reconnect_max_s=5.0), Recorder())
    async with running(conn):
        with pytest.raises(AmiTimeoutError):
            await conn.wait_logged_in(120.0)
        assert conn.health().last_error is not None


async def test_health_reports_event_rate_and_last_event_time() -> None:
    rec = Recorder()
    loop = asyncio.get_running_loop()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port, ping_interval_s=100.0), rec)
        async with running(conn):
            server = await fake.next_conn()
            await conn.wait_logged_in(LONG)
            await rec.next_event("FullyBooted", LONG)
            for second in range(6):
                server.write(b"Event: Tick\r\n\r\n" * 50)
                for _ in range(50):
                    await rec.next_event("Tick", LONG)
                sent_at = loop.time()
                if second < 5:
                    await asyncio.sleep(1.0)
            health = conn.health()
            assert health.events_per_s == pytest.approx(50.0, rel=0.05)
            assert health.last_event_at == pytest.approx(sent_at, abs=0.01)
            await asyncio.sleep(30.0)  # a quiet link reads as quiet
            assert conn.health().events_per_s < 5.0
