"""The simulator's AMI actions: the dispatch table, session actions (Login, Logoff, Ping, Events),
channel actions (Hangup, Redirect, AbsoluteTimeout, Getvar, Setvar), queue membership and AstDB.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from ctid.asterisk.simulator.ami_lists import ListActions, list_ack, list_done, list_item
from ctid.asterisk.simulator.ami_originate import Originator
from ctid.asterisk.simulator.ami_server import AmiSession, event_mask_for
from ctid.asterisk.simulator.config import SimulatorConfig
from ctid.asterisk.simulator.engine import Engine
from ctid.asterisk.simulator.model import Chan
from ctid.asterisk.simulator.wire import Pairs, encode, header, is_true

Handler = Callable[[AmiSession, Pairs], None]


class AmiActions:
    """Every AMI action the simulator answers, by lower-cased name (`handlers()`)."""

    def __init__(self, config: SimulatorConfig, engine: Callable[[], Engine]) -> None:
        self.config = config
        self._engine = engine
        self.refuse_logins = False
        self.globals: dict[str, str] = {}
        self.originate = Originator(config, engine)
        self.lists = ListActions(engine)

    @property
    def engine(self) -> Engine:
        return self._engine()

    def handlers(self) -> dict[str, Handler]:
        return {
            "login": self._login,
            "logoff": self._logoff,
            "ping": self._ping,
            "events": self._events,
            "originate": self.originate.originate,
            "hangup": self._hangup,
            "redirect": self._redirect,
            "absolutetimeout": self._absolute_timeout,
            "getvar": self._getvar,
            "setvar": self._setvar,
            "queuepause": self._queue_pause,
            "queueadd": self._queue_add,
            "queueremove": self._queue_remove,
            "queuepenalty": self._queue_penalty,
            "queuestatus": self.lists.queue_status,
            "queuesummary": self.lists.queue_summary,
            "coreshowchannels": self.lists.core_show_channels,
            "dbput": self._db_put,
            "dbget": self._db_get,
            "dbdel": self._db_del,
            "dbdeltree": self._db_deltree,
        }

    def _login(self, s: AmiSession, f: Pairs) -> None:
        username = header(f, "Username")
        secret = header(f, "Secret")
        user = next((u for u in self.config.users if u.username == username), None)
        if s.authenticated:
            s.respond(f, "Success", [("Message", "Authentication accepted")])
            return
        if self.refuse_logins or user is None or user.secret != secret:
            # Asterisk sleeps a second before refusing, then hangs up on the client
            s.busy = True

            def refuse() -> None:
                s.respond(f, "Error", [("Message", "Authentication failed")])
                s.close()

            asyncio.get_running_loop().call_later(self.config.login_fail_delay_s, refuse)
            return
        s.user = user
        s.event_mask = event_mask_for(user, header(f, "Events"))
        s.respond(f, "Success", [("Message", "Authentication accepted")])
        if "system" in s.event_mask:
            up = str(self.engine.pbx.uptime())
            s.send(
                encode(
                    [
                        ("Event", "FullyBooted"),
                        ("Privilege", "system,all"),
                        ("Uptime", up),
                        ("LastReload", up),
                        ("Status", "Fully Booted"),
                    ]
                )
            )

    def _logoff(self, s: AmiSession, f: Pairs) -> None:
        s.respond(f, "Goodbye", [("Message", "Thanks for all the fish.")])
        s.close()

    def _ping(self, s: AmiSession, f: Pairs) -> None:
        s.respond(f, "Success", [("Ping", "Pong"), ("Timestamp", f"{self.engine.pbx.epoch():.6f}")])

    def _events(self, s: AmiSession, f: Pairs) -> None:
        assert s.user is not None
        s.event_mask = event_mask_for(s.user, header(f, "EventMask") or "on")
        s.respond(f, "Success", [("Events", "On" if s.event_mask else "Off")])

    def _hangup(self, s: AmiSession, f: Pairs) -> None:
        name = header(f, "Channel")
        if not name:
            s.respond(f, "Error", [("Message", "No channel specified")])
            return
        cause_text = header(f, "Cause").strip()
        cause = int(cause_text) if cause_text.isdigit() else None
        engine = self.engine
        if len(name) > 2 and name.startswith("/") and name.endswith("/"):
            try:
                rx = re.compile(name[1:-1])
            except re.error:
                s.respond(f, "Error", [("Message", "Regex compile failed on: " + name)])
                return
            targets = [c for c in engine.pbx.channels.values() if rx.search(c.name)]
            list_ack(s, f, "Channels hung up will follow")
            for chan in targets:
                list_item(s, f, [("Event", "ChannelHungup"), ("Channel", chan.name)])
            list_done(s, f, "ChannelsHungupListComplete", len(targets))
            for chan in targets:
                if chan.alive:
                    engine.dialplan.hangup_channel(chan, cause)
            return
        found = engine.pbx.channels.get(name)
        if found is None:
            s.respond(f, "Error", [("Message", "No such channel")])
            return
        s.respond(f, "Success", [("Message", "Channel Hungup")])
        engine.pbx.later(0.0, engine.dialplan.hangup_channel, found, cause)

    def _redirect(self, s: AmiSession, f: Pairs) -> None:
        name = header(f, "Channel")
        if not name:
            s.respond(f, "Error", [("Message", "Channel not specified")])
            return
        priority = header(f, "Priority") or "1"
        if not priority.strip().isdigit():
            s.respond(f, "Error", [("Message", "Invalid priority")])
            return
        chan = self.engine.pbx.channels.get(name)
        if chan is None:
            s.respond(f, "Error", [("Message", f"Channel does not exist: {name}")])
            return
        context = header(f, "Context") or chan.context
        exten = header(f, "Exten")
        s.respond(f, "Success", [("Message", "Redirect successful")])
        self.engine.pbx.later(
            0.0, self.engine.dialplan.redirect, chan, context, exten, int(priority)
        )

    def _absolute_timeout(self, s: AmiSession, f: Pairs) -> None:
        name = header(f, "Channel")
        if not name:
            s.respond(f, "Error", [("Message", "No channel specified")])
            return
        chan = self.engine.pbx.channels.get(name)
        if chan is None:
            s.respond(f, "Error", [("Message", "No such channel")])
            return
        try:
            seconds = float(header(f, "Timeout") or "0")
        except ValueError:
            seconds = 0.0
        self.engine.dialplan.absolute_timeout(chan, seconds)
        s.respond(f, "Success", [("Message", "Timeout Set")])

    def _variable(self, s: AmiSession, f: Pairs) -> tuple[str, Chan | None] | None:
        """Getvar/Setvar's `Variable` and the `Channel` it is on (None: a global variable); None
        once the action has been refused."""
        var = header(f, "Variable")
        if not var:
            s.respond(f, "Error", [("Message", "No variable specified")])
            return None
        name = header(f, "Channel")
        if not name:
            return var, None
        chan = self.engine.pbx.channels.get(name)
        if chan is None:
            s.respond(f, "Error", [("Message", "No such channel")])
            return None
        return var, chan

    def _getvar(self, s: AmiSession, f: Pairs) -> None:
        if (target := self._variable(s, f)) is None:
            return
        var, chan = target
        if chan is not None:
            value = self.engine.pbx.get_var(chan, var) or ""
        else:
            value = self.globals.get(var, "")
        s.respond(f, "Success", [("Variable", var), ("Value", value)])

    def _setvar(self, s: AmiSession, f: Pairs) -> None:
        if (target := self._variable(s, f)) is None:
            return
        var, chan = target
        value = header(f, "Value")
        s.respond(f, "Success", [("Message", "Variable Set")])
        if chan is not None:
            self.engine.pbx.set_var(chan, var, value)
        else:
            self.globals[var] = value

    def _queue_pause(self, s: AmiSession, f: Pairs) -> None:
        interface = header(f, "Interface")
        paused_text = header(f, "Paused")
        if not interface or not paused_text:
            s.respond(f, "Error", [("Message", "Need 'Interface' and 'Paused' parameters.")])
            return
        paused = is_true(paused_text)
        engine = self.engine
        queue = header(f, "Queue")
        if not any(
            q.member(interface) is not None
            for q in engine.pbx.queues.values()
            if not queue or q.name.lower() == queue.lower()
        ):
            s.respond(f, "Error", [("Message", "Interface not found")])
            return
        s.respond(
            f,
            "Success",
            [
                (
                    "Message",
                    "Interface paused successfully"
                    if paused
                    else "Interface unpaused successfully",
                )
            ],
        )
        engine.members.queue_pause(interface, queue, paused, header(f, "Reason"))

    def _queue_add(self, s: AmiSession, f: Pairs) -> None:
        queue = header(f, "Queue")
        interface = header(f, "Interface")
        if not queue or not interface:
            s.respond(f, "Error", [("Message", "'Queue' and 'Interface' not specified.")])
            return
        penalty_text = header(f, "Penalty").strip()
        if penalty_text and not penalty_text.lstrip("-").isdigit():
            s.respond(f, "Error", [("Message", "'Penalty' parameter must be numeric")])
            return
        engine = self.engine
        q = engine.pbx.queues.get(queue)
        if q is None:
            s.respond(f, "Error", [("Message", "Unable to add interface to queue: No such queue")])
            return
        if q.member(interface) is not None:
            s.respond(f, "Error", [("Message", "Unable to add interface: Already there")])
            return
        s.respond(f, "Success", [("Message", "Added interface to queue")])
        engine.members.queue_add(
            queue,
            interface,
            header(f, "MemberName"),
            header(f, "StateInterface"),
            int(penalty_text or "0"),
            is_true(header(f, "Paused")),
            header(f, "Reason"),
        )

    def _queue_remove(self, s: AmiSession, f: Pairs) -> None:
        queue = header(f, "Queue")
        interface = header(f, "Interface")
        if not queue or not interface:
            s.respond(f, "Error", [("Message", "'Queue' and 'Interface' not specified.")])
            return
        engine = self.engine
        q = engine.pbx.queues.get(queue)
        if q is None:
            s.respond(
                f,
                "Error",
                [("Message", "Unable to remove interface from queue: No such queue")],
            )
            return
        m = q.member(interface)
        if m is None:
            s.respond(f, "Error", [("Message", "Unable to remove interface: Not there")])
            return
        if not m.dynamic:
            s.respond(f, "Error", [("Message", "Member not dynamic")])
            return
        s.respond(f, "Success", [("Message", "Removed interface from queue")])
        engine.members.queue_remove(queue, interface)

    def _queue_penalty(self, s: AmiSession, f: Pairs) -> None:
        interface = header(f, "Interface")
        penalty = header(f, "Penalty").strip()
        if not interface or not penalty:
            s.respond(f, "Error", [("Message", "Need 'Interface' and 'Penalty' parameters.")])
            return
        if not penalty.lstrip("-").isdigit():
            s.respond(f, "Error", [("Message", "Invalid penalty")])
            return
        if self.engine.members.queue_penalty(interface, int(penalty), header(f, "Queue")):
            s.respond(f, "Success", [("Message", "Interface penalty set successfully")])
        else:
            s.respond(f, "Error", [("Message", "Invalid interface, queuename or penalty")])

    @staticmethod
    def _db_entry(s: AmiSession, f: Pairs, stop: str = ".") -> tuple[str, str] | None:
        """The AstDB `Family` and `Key` an action names; None once it has been refused (DBPut's
        messages end without a full stop, DBGet's and DBDel's with one)."""
        family, key = header(f, "Family"), header(f, "Key")
        if not family:
            s.respond(f, "Error", [("Message", f"No family specified{stop}")])
            return None
        if not key:
            s.respond(f, "Error", [("Message", f"No key specified{stop}")])
            return None
        return family, key

    def _db_put(self, s: AmiSession, f: Pairs) -> None:
        if (entry := self._db_entry(s, f, stop="")) is None:
            return
        family, key = entry
        self.engine.pbx.db[(family, key)] = header(f, "Val")
        s.respond(f, "Success", [("Message", "Updated database successfully")])

    def _db_get(self, s: AmiSession, f: Pairs) -> None:
        if (entry := self._db_entry(s, f)) is None:
            return
        family, key = entry
        value = self.engine.pbx.db.get((family, key))
        if value is None:
            s.respond(f, "Error", [("Message", "Database entry not found")])
            return
        list_ack(s, f, "Result will follow")
        list_item(
            s, f, [("Event", "DBGetResponse"), ("Family", family), ("Key", key), ("Val", value)]
        )
        list_done(s, f, "DBGetComplete", 1)

    def _db_del(self, s: AmiSession, f: Pairs) -> None:
        if (entry := self._db_entry(s, f)) is None:
            return
        if self.engine.pbx.db.pop(entry, None) is None:
            s.respond(f, "Error", [("Message", "Database entry could not be deleted")])
            return
        s.respond(f, "Success", [("Message", "Key deleted successfully")])

    def _db_deltree(self, s: AmiSession, f: Pairs) -> None:
        family, key = header(f, "Family"), header(f, "Key")
        if not family:
            s.respond(f, "Error", [("Message", "No family specified.")])
            return
        db = self.engine.pbx.db
        doomed = [k for k in db if k[0] == family and (not key or k[1].startswith(key))]
        if not doomed:
            s.respond(f, "Error", [("Message", "Database entry could not be deleted")])
            return
        for k in doomed:
            del db[k]
        s.respond(f, "Success", [("Message", "Key tree deleted successfully")])
