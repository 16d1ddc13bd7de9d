"""The AMI list actions: QueueStatus, QueueSummary and CoreShowChannels, in Asterisk's framing."""

from __future__ import annotations

from collections.abc import Callable

from ctid.asterisk.simulator.ami_server import AmiSession
from ctid.asterisk.simulator.engine import Engine
from ctid.asterisk.simulator.wire import Pairs, encode, header


def list_ack(s: AmiSession, f: Pairs, message: str) -> None:
    """The first answer of a list action."""
    s.respond(f, "Success", [("EventList", "start"), ("Message", message)])


def list_item(s: AmiSession, f: Pairs, body: Pairs) -> None:
    """One event of a list action's answer, the action's ActionID (if any) after `body`."""
    aid = header(f, "ActionID")
    s.send(encode([*body, ("ActionID", aid)] if aid else body))


def list_done(s: AmiSession, f: Pairs, event: str, count: int) -> None:
    body: Pairs = [("Event", event)]
    aid = header(f, "ActionID")
    if aid:
        body.append(("ActionID", aid))
    body += [("EventList", "Complete"), ("ListItems", str(count))]
    s.send(encode(body))


class ListActions:
    """Answers the list actions from the engine's state."""

    def __init__(self, engine: Callable[[], Engine]) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        return self._engine()

    def queue_status(self, s: AmiSession, f: Pairs) -> None:
        engine = self.engine
        want_q = header(f, "Queue")
        want_m = header(f, "Member")
        list_ack(s, f, "Queue status will follow")
        count = 0
        now = engine.pbx.now()
        for q in engine.pbx.queues.values():
            if want_q and q.name != want_q:
                continue
            if not want_m:
                list_item(
                    s,
                    f,
                    [
                        ("Event", "QueueParams"),
                        ("Queue", q.name),
                        ("Max", "0"),
                        ("Strategy", q.strategy),
                        ("Calls", str(len(q.callers))),
                        ("Holdtime", str(q.holdtime)),
                        ("TalkTime", str(q.talktime)),
                        ("Completed", str(q.completed)),
                        ("Abandoned", str(q.abandoned)),
                        ("ServiceLevel", "0"),
                        ("ServicelevelPerf", "0.0"),
                        ("ServicelevelPerf2", "0.0"),
                        ("Weight", "0"),
                    ],
                )
                count += 1
            for m in q.members:
                if want_m and want_m not in (m.interface, m.name):
                    continue
                list_item(s, f, [("Event", "QueueMember"), *m.status_fields()])
                count += 1
            if not want_m:
                for pos, entry in enumerate(q.callers, start=1):
                    c = entry.chan
                    list_item(
                        s,
                        f,
                        [
                            ("Event", "QueueEntry"),
                            ("Queue", q.name),
                            ("Position", str(pos)),
                            ("Channel", c.name),
                            ("Uniqueid", c.uniqueid),
                            ("CallerIDNum", c.cid_num or "<unknown>"),
                            ("CallerIDName", c.cid_name or "<unknown>"),
                            ("ConnectedLineNum", c.conn_num or "<unknown>"),
                            ("ConnectedLineName", c.conn_name or "<unknown>"),
                            ("Wait", str(int(now - entry.start))),
                            ("Priority", "0"),
                        ],
                    )
                    count += 1
        list_done(s, f, "QueueStatusComplete", count)

    def queue_summary(self, s: AmiSession, f: Pairs) -> None:
        engine = self.engine
        want_q = header(f, "Queue")
        list_ack(s, f, "Queue summary will follow")
        count = 0
        now = engine.pbx.now()
        for q in engine.pbx.queues.values():
            if want_q and q.name != want_q:
                continue
            logged_in = [m for m in q.members if m.status not in (4, 5)]
            available = [m for m in logged_in if m.status in (0, 1) and not m.paused]
            longest = max((int(now - e.start) for e in q.callers), default=0)
            list_item(
                s,
                f,
                [
                    ("Event", "QueueSummary"),
                    ("Queue", q.name),
                    ("LoggedIn", str(len(logged_in))),
                    ("Available", str(len(available))),
                    ("Callers", str(len(q.callers))),
                    ("HoldTime", str(q.holdtime)),
                    ("TalkTime", str(q.talktime)),
                    ("LongestHoldTime", str(longest)),
                ],
            )
            count += 1
        list_done(s, f, "QueueSummaryComplete", count)

    def core_show_channels(self, s: AmiSession, f: Pairs) -> None:
        engine = self.engine
        aid = header(f, "ActionID")
        head: Pairs = [("ActionID", aid)] if aid else []
        list_ack(s, f, "Channels will follow")
        now = engine.pbx.now()
        count = 0
        for chan in list(engine.pbx.channels.values()):
            secs = int(now - chan.created)
            duration = f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"
            s.send(
                encode(
                    [
                        ("Event", "CoreShowChannel"),
                        *head,
                        *chan.block(),
                        ("Application", chan.app),
                        ("ApplicationData", chan.appdata),
                        ("Duration", duration),
                        ("BridgeId", chan.bridge.id if chan.bridge is not None else ""),
                    ]
                )
            )
            count += 1
        list_done(s, f, "CoreShowChannelsComplete", count)
