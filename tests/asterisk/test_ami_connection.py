"""AmiConnection over real loopback TCP against the scriptable fake AMI server."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from ctid.asterisk.ami import AmiConnection
from ctid.asterisk.frame import Frame
from ctid.core.errors import (
    AmiActionError,
    AmiDisconnectedError,
    AmiTimeoutError,
    UnsafeValueError,
)
from tests.asterisk.amifake import (
    WAIT,
    FakeAmi,
    FakeConn,
    Recorder,
    config,
    connection,
    parse_frame,
    reply_block,
    retarget,
    running,
    watch_logs,
)


async def logged_in(fake: FakeAmi, conn: AmiConnection) -> FakeConn:
    """The server side of the link once the client is logged in and resynced."""
    server_conn = await fake.next_conn()
    await conn.wait_logged_in(WAIT)
    return server_conn


async def test_login_events_in_wire_order_and_health() -> None:
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        assert conn.health().logged_in is False
        with watch_logs() as logs:
            async with running(conn):
                server = await logged_in(fake, conn)
                login = fake.received[0]
                assert login.name == "Login"
                assert login.frame["Username"] == "ctid"
                assert login.frame["Secret"] == "ctidlab"
                await server.send(
                    b"Event: A\r\nN: 1\r\n\r\nEvent: B\r\nN: 2\r\n\r\nEvent: C\r\nN: 3\r\n\r\n"
                )
                # FullyBooted is an ordinary event; nothing waits for it.
                assert (await rec.next_frame()).event == "FullyBooted"
                got = [await rec.next_frame() for _ in range(3)]
                assert [(f.event, f["N"]) for f in got] == [("A", "1"), ("B", "2"), ("C", "3")]
                health = conn.health()
                assert health.connected and health.logged_in
                assert health.last_event_at is not None
                assert health.reconnects == 0
                assert rec.logins == 1
                assert await rec.next_link() is True
        names = [e["event"] for e in logs.entries]
        assert "ami_connected" in names
        logged = next(e for e in logs.entries if e["event"] == "ami_logged_in")
        assert logged["version"] == "11.0.0"
        assert "ami_link_lost" not in names  # our own close is not a lost link
        assert conn.health().logged_in is False


async def test_action_while_disconnected_fails_at_once_and_is_not_queued() -> None:
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        with pytest.raises(AmiDisconnectedError):
            await conn.action("QueuePause", {"Interface": "Local/seat1@phones/n"})
        async with running(conn):
            await logged_in(fake, conn)
            await conn.action("Ping")
        assert fake.names() == ["Login", "Ping"]


async def test_chinese_name_split_over_tcp_at_every_byte_position() -> None:
    rec = Recorder()
    frame = "Event: Newchannel\r\nCallerIDName: 张三丰\r\nUniqueid: 1.1\r\n\r\n".encode()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        async with running(conn):
            server = await logged_in(fake, conn)
            await rec.next_event("FullyBooted")
            for cut in range(1, len(frame)):
                # The marker proves the client has read the first part before the rest is sent.
                await server.send(b"Event: Marker\r\n\r\n" + frame[:cut])
                assert (await rec.next_frame()).event == "Marker"
                await server.send(frame[cut:])
                got = await rec.next_frame()
                assert got["CallerIDName"] == "张三丰", cut


async def test_invalid_utf8_is_replaced_not_dropped() -> None:
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        async with running(conn):
            server = await logged_in(fake, conn)
            await server.send(b"Event: Newchannel\r\nCallerIDName: \xffZhang\xe4\r\n\r\n")
            got = await rec.next_event("Newchannel")
            assert got["CallerIDName"] == "\ufffdZhang\ufffd"


async def test_handler_exception_keeps_the_link_and_later_events() -> None:
    rec = Recorder()

    def fragile(frame: Frame) -> None:
        if frame.event == "Boom":
            raise RuntimeError("handler bug")
        rec.on_frame(frame)

    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec, on_frame=fragile)
        with watch_logs() as logs:
            async with running(conn):
                server = await logged_in(fake, conn)
                # All in one read: the frames after the bad one must still arrive.
                await server.send(
                    b"Event: Before\r\n\r\nEvent: Boom\r\nUniqueid: 9.9\r\n\r\nEvent: After\r\n\r\n"
                )
                assert (await rec.next_event("Before")).event == "Before"
                assert (await rec.next_frame()).event == "After"
                # The link is still usable.
                assert (await conn.action("Ping"))["Ping"] == "Pong"
                assert len(fake.conns) == 1
        failed = logs.of("ami_handler_failed")
        assert len(failed) == 1
        assert failed[0]["ami_event"] == "Boom"
        assert failed[0]["uniqueid"] == "9.9"
        assert not logs.of("ami_link_lost")


async def test_responses_are_matched_by_action_id_even_out_of_order() -> None:
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        async with running(conn):
            server = await logged_in(fake, conn)
            first = asyncio.create_task(conn.action("QueuePause", {"Queue": "ordinary"}))
            second = asyncio.create_task(conn.action("QueuePause", {"Queue": "expert"}))
            a1 = await server.next_action()
            a2 = await server.next_action()
            assert a1.action_id != a2.action_id
            by_queue = {a.frame["Queue"]: a.action_id for a in (a1, a2)}
            # Same message text for both; only the ActionID tells them apart. Answer in reverse,
            # with an event and a stranger's response in between.
            await server.send(
                f"Response: Success\r\nActionID: {by_queue['expert']}\r\n"
                "Message: Interface paused successfully\r\nTag: expert\r\n\r\n"
                "Event: QueueMemberPause\r\nQueue: expert\r\n\r\n"
                "Response: Success\r\nActionID: somebody-else\r\nMessage: x\r\n\r\n"
                f"Response: Success\r\nActionID: {by_queue['ordinary']}\r\n"
                "Message: Interface paused successfully\r\nTag: ordinary\r\n\r\n"
            )
            r1, r2 = await asyncio.wait_for(asyncio.gather(first, second), WAIT)
            assert r1["Tag"] == "ordinary"
            assert r2["Tag"] == "expert"
            assert (await rec.next_event("QueueMemberPause"))["Queue"] == "expert"


@pytest.mark.parametrize(
    ("recording", "action", "nth", "fields"),
    [
        ("resync.jsonl", "CoreShowChannels", 0, {}),
        ("resync.jsonl", "QueueStatus", 0, {}),
        ("resync.jsonl", "QueueSummary", 0, {}),
        ("queue_ops.jsonl", "QueueStatus", 0, {"Queue": "ordinary"}),
        ("queue_ops.jsonl", "QueueStatus", 1, {"Queue": "expert"}),
        ("queue_ops.jsonl", "QueueSummary", 0, {}),
    ],
)
async def test_list_actions_replayed_from_recordings(
    recording: str, action: str, nth: int, fields: dict[str, str]
) -> None:
    recorded_id, block = reply_block(recording, action, nth)
    mine = [parse_frame(raw) for raw in block if f"ActionID: {recorded_id}\r\n" in raw]
    strangers = [parse_frame(raw) for raw in block if f"ActionID: {recorded_id}\r\n" not in raw]
    expected_items = [f for f in mine if f.event is not None and "EventList" not in f]
    assert expected_items, "the recording has items"
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        async with running(conn):
            server = await logged_in(fake, conn)
            await rec.next_event("FullyBooted")
            task = asyncio.create_task(conn.list_action(action, fields))
            sent = await server.next_action()
            assert sent.name == action
            for key, value in fields.items():
                assert sent.frame[key] == value
            for raw in block:
                # One write per recorded frame, as Asterisk sent them.
                await server.send(retarget(raw, recorded_id, sent.action_id))
            items = await asyncio.wait_for(task, WAIT)
            assert [f.pairs for f in items] == [
                [(k, sent.action_id if k == "ActionID" else v) for k, v in f.pairs]
                for f in expected_items
            ]
            # Frames of other origin between them (QueueMemberRemoved) still reach the app,
            # and none of the list's own frames do.
            await server.send(b"Event: Fence\r\n\r\n")
            delivered = []
            while (frame := await rec.next_frame()).event != "Fence":
                delivered.append(frame)
            assert [f.pairs for f in delivered] == [f.pairs for f in strangers]
            # The same action through action() returns its Response frame after the list ends.
            task2 = asyncio.create_task(conn.action(action, fields))
            sent2 = await server.next_action()
            for raw in block:
                await server.send(retarget(raw, recorded_id, sent2.action_id))
            response = await asyncio.wait_for(task2, WAIT)
            assert response["EventList"] == "start"
            assert response["ActionID"] == sent2.action_id


async def test_unknown_action_and_error_responses_raise() -> None:
    recorded_id, block = reply_block("queue_ops.jsonl", "NoSuchAction")
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        async with running(conn):
            server = await logged_in(fake, conn)
            task = asyncio.create_task(conn.action("NoSuchAction"))
            sent = await server.next_action()
            await server.send(retarget(block[0], recorded_id, sent.action_id))
            with pytest.raises(AmiActionError) as err:
                await asyncio.wait_for(task, WAIT)
            assert err.value.action == "NoSuchAction"
            assert err.value.message.startswith("Invalid/unknown command: NoSuchAction.")
            # An error answer to a list action raises too (no hang waiting for Complete).
            listing = asyncio.create_task(conn.list_action("QueueStatus", {"Queue": "nope"}))
            sent = await server.next_action()
            await server.send(
                f"Response: Error\r\nActionID: {sent.action_id}\r\nMessage: No such queue\r\n\r\n"
            )
            with pytest.raises(AmiActionError, match="No such queue"):
                await asyncio.wait_for(listing, WAIT)


async def test_list_action_detected_by_eventlist_start_for_unknown_names() -> None:
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        async with running(conn):
            server = await logged_in(fake, conn)
            task = asyncio.create_task(conn.action("DeviceStateList"))
            sent = await server.next_action()
            aid = sent.action_id
            await server.send(
                f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n"
                "Message: Device State Changes will follow\r\n\r\n"
                f"Event: DeviceStateChange\r\nActionID: {aid}\r\nDevice: x\r\n\r\n"
                f"Event: DeviceStateListComplete\r\nActionID: {aid}\r\nEventList: Complete\r\n"
                "ListItems: 1\r\n\r\nEvent: After\r\n\r\n"
            )
            response = await asyncio.wait_for(task, WAIT)
            assert response["Message"] == "Device State Changes will follow"
            assert (await rec.next_event("After")).event == "After"
            assert not [f for f in rec.seen if f.event == "DeviceStateChange"]


async def test_originate_response_event_with_a_finished_action_id_goes_to_the_app() -> None:
    recorded_id, block = reply_block("resync.jsonl", "Originate")
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        async with running(conn):
            server = await logged_in(fake, conn)
            task = asyncio.create_task(
                conn.action(
                    "Originate",
                    [
                        ("Channel", "Local/4000@hotline"),
                        ("Variable", "IVR=1"),
                        ("Variable", "STAY=30"),
                    ],
                )
            )
            sent = await server.next_action()
            assert sent.frame.all("Variable") == ["IVR=1", "STAY=30"]
            for raw in block:
                await server.send(retarget(raw, recorded_id, sent.action_id))
            response = await asyncio.wait_for(task, WAIT)
            assert response["Message"] == "Originate successfully queued"
            event = await rec.next_event("OriginateResponse")
            assert event["ActionID"] == sent.action_id
            assert event["Uniqueid"] == "1795358832.36"


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("Hangup", {"Channel": "PJSIP/seat1-0001\r\nAction: Originate"}),
        ("Hangup", {"Channel": "PJSIP/seat1-0001\nAction: Originate"}),
        ("Hangup", {"Channel": "PJSIP/seat1-0001\r"}),
        ("Hangup", [("Chan\r\nnel", "x")]),
        ("Hangup\r\nAction: Originate", {}),
        ("Hangup", {"ActionID": "mine"}),
        ("Hangup", {"Bad: key": "x"}),
    ],
)
async def test_cr_lf_and_reserved_headers_are_refused_before_the_wire(
    name: str, fields: dict[str, str] | list[tuple[str, str]]
) -> None:
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        # Refused the same way with the link down...
        with pytest.raises(UnsafeValueError):
            await conn.action(name, fields)
        async with running(conn):
            await logged_in(fake, conn)
            # ...and up.
            with pytest.raises(UnsafeValueError):
                await conn.action(name, fields)
            with pytest.raises(UnsafeValueError):
                await conn.list_action(name, fields)
            await conn.action("Ping")  # a fence: anything written before it has arrived
        assert fake.names() == ["Login", "Ping"]
        assert all(b"Originate" not in a.raw for a in fake.received)


def test_secret_with_newline_is_refused_at_construction() -> None:
    with pytest.raises(UnsafeValueError):
        AmiConnection(config(5038, secret="x\r\nAction: Originate"), lambda f: None)


async def test_in_flight_action_fails_on_link_loss_and_is_never_replayed() -> None:
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        with watch_logs() as logs:
            async with running(conn):
                server = await logged_in(fake, conn)
                assert await rec.next_link() is True
                task = asyncio.create_task(
                    conn.action("Originate", {"Channel": "Local/spy1@supervisor"})
                )
                sent = await server.next_action()
                assert sent.name == "Originate"
                server.abort()
                with pytest.raises(AmiDisconnectedError):
                    await asyncio.wait_for(task, WAIT)
                assert await rec.next_link() is False
                # It comes back by itself, logs in and resyncs again...
                await fake.next_conn()
                assert await rec.next_link() is True
                assert await asyncio.wait_for(rec.login_done.get(), WAIT) == 1
                assert await asyncio.wait_for(rec.login_done.get(), WAIT) == 2
                await conn.wait_logged_in(WAIT)
                # ...and a fence action on the new link shows nothing was re-sent before it.
                await conn.action("Ping")
                assert conn.health().reconnects == 1
        assert fake.names() == ["Login", "Originate", "Login", "Ping"]
        lost = logs.of("ami_link_lost")
        assert len(lost) == 1
        assert logs.count("ami_reconnect_in") == 1


async def test_asterisk_closing_the_link_fails_pending_actions_at_once() -> None:
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port, action_timeout_s=60.0), rec)
        async with running(conn):
            server = await logged_in(fake, conn)
            task = asyncio.create_task(conn.list_action("CoreShowChannels"))
            sent = await server.next_action()
            await server.send(
                f"Response: Success\r\nActionID: {sent.action_id}\r\nEventList: start\r\n"
                "Message: Channels will follow\r\n\r\n"
            )
            server.writer.close()  # a clean FIN in the middle of the list
            with pytest.raises(AmiDisconnectedError):
                await asyncio.wait_for(task, WAIT)


async def test_action_timeout_and_late_answer_does_not_leak() -> None:
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        async with running(conn):
            server = await logged_in(fake, conn)
            await rec.next_event("FullyBooted")
            with pytest.raises(AmiTimeoutError):
                await conn.list_action("CoreShowChannels", timeout=0.05)
            sent = await server.next_action()
            aid = sent.action_id
            # The list arrives after we gave up: none of it may reach the app as events.
            await server.send(
                f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n\r\n"
                f"Event: CoreShowChannel\r\nActionID: {aid}\r\nChannel: late\r\n\r\n"
                f"Event: CoreShowChannelsComplete\r\nActionID: {aid}\r\nEventList: Complete\r\n\r\n"
                "Event: Fence\r\n\r\n"
            )
            assert (await rec.next_frame()).event == "Fence"
            assert conn.health().logged_in  # a slow answer is not a dead link


async def test_login_refused_is_logged_once_across_retries_without_tracebacks() -> None:
    rec = Recorder()
    async with FakeAmi(login="reject") as fake:
        conn = connection(config(fake.port, reconnect_min_s=0.001, reconnect_max_s=0.002), rec)
        with watch_logs() as logs:
            async with running(conn):
                for _ in range(4):
                    server = await fake.next_conn()
                    await server.wait_closed()
                health = conn.health()
                assert not health.logged_in
                assert health.last_error == "Authentication failed"
                with pytest.raises(AmiTimeoutError):
                    await conn.wait_logged_in(0.01)
        failed = logs.of("ami_login_failed")
        assert len(failed) == 1
        assert failed[0]["reason"] == "Authentication failed"
        assert failed[0]["log_level"] == "error"
        assert not [e for e in logs.entries if "exc_info" in e or "exception" in e]
        assert logs.count("ami_reconnect_in") >= 3
        assert rec.logins == 0
        assert fake.names()[:4] == ["Login"] * 4


async def test_login_failure_is_logged_again_after_a_success() -> None:
    rec = Recorder()
    async with FakeAmi(login="reject") as fake:
        conn = connection(config(fake.port, reconnect_min_s=0.001, reconnect_max_s=0.002), rec)
        with watch_logs() as logs:
            async with running(conn):
                await (await fake.next_conn()).wait_closed()
                await (await fake.next_conn()).wait_closed()
                fake.login = "accept"
                await conn.wait_logged_in(WAIT)
                fake.login = "reject"
                fake.conns[-1].abort()
                await (await fake.next_conn()).wait_closed()
                await (await fake.next_conn()).wait_closed()
                # Two refused, one accepted, two refused: the same reason is logged twice.
        assert logs.count("ami_login_failed") == 2


async def test_refused_connect_is_retried_and_logged_once() -> None:
    async with FakeAmi() as fake:
        port = fake.port
    # Nobody listens on `port` now.
    rec = Recorder()
    conn = connection(config(port, reconnect_min_s=0.001, reconnect_max_s=0.002), rec)
    with watch_logs() as logs:
        async with running(conn):
            await logs.wait_count("ami_reconnect_in", 3)
    assert logs.count("ami_connect_failed") == 1
    assert conn.health().connected is False


async def test_close_during_connect_stops_promptly() -> None:
    rec = Recorder()
    async with FakeAmi(login="ignore") as fake:
        conn = connection(config(fake.port, connect_timeout_s=60.0, action_timeout_s=60.0), rec)
        task = asyncio.create_task(conn.run())
        server = await fake.next_conn()
        await fake.wait_received("Login")
        await asyncio.wait_for(conn.close(), WAIT)
        assert task.done() and not task.cancelled() and task.exception() is None
        await server.wait_closed()
        assert len(fake.conns) == 1  # and it does not come back


async def test_cancelling_run_during_login_propagates_and_closes() -> None:
    rec = Recorder()
    async with FakeAmi(login="ignore") as fake:
        conn = connection(config(fake.port, action_timeout_s=60.0), rec)
        task = asyncio.create_task(conn.run())
        server = await fake.next_conn()
        await fake.wait_received("Login")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)
        await server.wait_closed()


async def test_close_during_tcp_connect_to_a_black_hole() -> None:
    # A listener whose accept queue is full leaves further connects hanging in SYN_SENT.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(0)
    port = blocker.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        rec = Recorder()
        conn = connection(config(port, connect_timeout_s=60.0), rec)
        task = asyncio.create_task(conn.run())
        await asyncio.sleep(0)
        await asyncio.wait_for(conn.close(), WAIT)
        assert task.done() and task.exception() is None
        assert not conn.health().connected
    finally:
        for s in fillers:
            s.close()
        blocker.close()


async def test_on_login_runs_after_every_login_and_may_use_actions() -> None:
    seen: list[list[Frame]] = []
    rec = Recorder()

    async with FakeAmi() as fake:
        holder: list[AmiConnection] = []

        async def resync() -> None:
            seen.append(await holder[0].list_action("CoreShowChannels"))

        conn = AmiConnection(config(fake.port), rec.on_frame, on_login=resync)
        holder.append(conn)
        async with running(conn):
            for round_ in range(2):
                server = await fake.next_conn()
                sent = await server.next_action()
                assert sent.name == "CoreShowChannels"
                with pytest.raises(AmiTimeoutError):
                    await conn.wait_logged_in(0.01)  # not ready until the resync is done
                aid = sent.action_id
                await server.send(
                    f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n\r\n"
                    f"Event: CoreShowChannel\r\nActionID: {aid}\r\nChannel: c{round_}\r\n\r\n"
                    f"Event: CoreShowChannelsComplete\r\nActionID: {aid}\r\nEventList: Complete"
                    "\r\n\r\n"
                )
                await conn.wait_logged_in(WAIT)
                if round_ == 0:
                    server.abort()
        assert [[f["Channel"] for f in items] for items in seen] == [["c0"], ["c1"]]


async def test_failed_resync_drops_the_link_and_retries() -> None:
    rec = Recorder()
    async with FakeAmi() as fake:
        holder: list[AmiConnection] = []
        calls = 0

        async def resync() -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                await holder[0].action("QueueStatus", timeout=0.01)

        conn = AmiConnection(config(fake.port), rec.on_frame, on_login=resync)
        holder.append(conn)
        with watch_logs() as logs:
            async with running(conn):
                first = await fake.next_conn()
                await first.wait_closed()
                await fake.next_conn()
                await conn.wait_logged_in(WAIT)
        assert calls == 2
        assert logs.count("ami_on_login_failed") == 1


async def test_oversized_frame_drops_the_link_with_a_log_line() -> None:
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        with watch_logs() as logs:
            async with running(conn):
                server = await logged_in(fake, conn)
                await rec.next_event("FullyBooted")
                chunk = b"Variable: " + b"x" * 65000 + b"\r\n"
                server.write(b"Event: Huge\r\n")
                for _ in range(20):
                    server.write(chunk)
                assert await rec.next_link() is True
                assert await rec.next_link() is False
                await server.wait_closed()
                await fake.next_conn()  # and it reconnects
                await conn.wait_logged_in(WAIT)
        too_large = logs.of("ami_frame_too_large")
        assert len(too_large) == 1
        lost = next(e for e in logs.entries if e["event"] == "ami_link_lost")
        assert "frame too large" in lost["reason"]


async def test_run_twice_is_refused() -> None:
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        async with running(conn):
            await logged_in(fake, conn)
            with pytest.raises(Exception, match="already running"):
                await conn.run()
