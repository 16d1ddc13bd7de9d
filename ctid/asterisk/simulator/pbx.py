"""`PbxSimulator`: the public face of the simulated Asterisk 22 — its AMI actions, the test knobs
(phones, callers, faults) and its lifecycle as an async context manager.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING

import structlog

from ctid.asterisk.simulator.ami_server import AmiServer, AmiSession, event_mask_for
from ctid.asterisk.simulator.config import PhoneSpec, SimulatorConfig, device_key, lab_config
from ctid.asterisk.simulator.engine import Engine
from ctid.asterisk.simulator.model import (
    Call,
    CallerPlan,
    Chan,
    DigitScript,
    MemberInfo,
    SimCall,
    device_of,
    float_or_none,
)
from ctid.asterisk.simulator.wire import (
    DOWN,
    PRIV_CALL,
    RINGING,
    UP,
    Pairs,
    encode,
    header,
    headers,
    is_true,
)
from ctid.core.errors import CtidError

if TYPE_CHECKING:
    from ctid.config import Config

log = structlog.get_logger(__name__)


class SimulatorError(CtidError):
    """The simulator was used wrongly (not started, unknown queue or seat)."""


Handler = Callable[[AmiSession, Pairs], None]
Report = Callable[[bool, Chan | None, int], None]

UNKNOWN_CMD = "Invalid/unknown command: {}. Use Action: ListCommands to show available commands."


def parse_callerid(text: str) -> tuple[str, str]:
    """`Zhang San <13800138000>` → ('13800138000', 'Zhang San'), like ast_callerid_parse."""
    text = text.strip()
    m = re.match(r'^\s*"?([^"<]*?)"?\s*<([^>]*)>\s*$', text)
    if m:
        return m.group(2).strip(), m.group(1).strip()
    if text and all(c.isdigit() or c in "+*#" for c in text):
        return text, ""
    return "", text


def parse_variables(values: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for value in values:
        for part in value.split(","):
            name, sep, val = part.partition("=")
            if sep and name.strip():
                out.append((name.strip(), val))
    return out


class PbxSimulator:
    """A simulated Asterisk 22 speaking real AMI (server) and FastAGI (client) over TCP.

    ```
    async with PbxSimulator(lab_config(agi_port=ctid_agi_port)) as sim:   # or lab(), or
        ...                                  # PbxSimulator.from_ctid_config(cfg, agi_port=…)
        sim.set_phone("seat1", answer_after_s=6, talk_s=5)
        call = sim.place_call("13800138000", "Zhang San", digits="1")
        await asyncio.wait_for(call.answered.wait(), 30)   # call.seat == "seat1"
        await asyncio.wait_for(call.ended.wait(), 30)      # call.outcome == "answered"
    ```

    AMI on `ami_port` (user/secret from the config; lab: ctid/ctidlab). Every call runs the lab
    dialplan: Answer, Set(CTID_QUEUE=<default>), AGI(<agi_url>), then Hangup if CTID_ROUTE is
    `hangup`, else Queue(${CTID_QUEUE},,,,120). Faults: `drop_ami_links`, `stall_ami`,
    `refuse_logins`, `fragment_ami`, `restart`. Everything runs on loop time (looptime works).
    """

    def __init__(
        self, config: SimulatorConfig | None = None, *, record_actions: bool = True
    ) -> None:
        self.config = config if config is not None else lab_config()
        self.actions_received: list[tuple[str, dict[str, str]]] = []
        """Every action received, in order (off with `record_actions=False` for long benchmarks)."""
        self._record_actions = record_actions
        self._server = AmiServer(self.config.host, self.config.ami_port, self._dispatch)
        self._engine: Engine | None = None
        self._refuse_logins = False
        self._globals: dict[str, str] = {}
        self._background: asyncio.Task[None] | None = None
        self._restarting = False

    @classmethod
    def from_ctid_config(
        cls,
        cfg: Config,
        agi_port: int | None = None,
        phone: PhoneSpec | None = None,
        **overrides: object,
    ) -> PbxSimulator:
        """The PBX `cfg` describes (see `SimulatorConfig.from_ctid_config`); `overrides` replace
        SimulatorConfig fields (`ami_port=…`, `queue_timeout_s=…`)."""
        sim_cfg = SimulatorConfig.from_ctid_config(cfg, agi_port=agi_port, phone=phone)
        if overrides:
            sim_cfg = replace(sim_cfg, **overrides)  # type: ignore[arg-type]
        return cls(sim_cfg)

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> PbxSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self._engine = Engine(self.config, self._server.broadcast)
        await self._server.start()
        log.info("pbx_sim_started", ami_port=self._server.port)

    async def stop(self) -> None:
        if self._background is not None:
            self._background.cancel()
            self._background = None
        await self._server.stop()
        if self._engine is not None:
            self._engine.vanish_all()
            tasks = list(self._engine.pbx.tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise SimulatorError("the simulator is not started (use `async with`)")
        return self._engine

    @property
    def ami_port(self) -> int:
        return self._server.port

    # ------------------------------------------------------------------ test knobs
    def set_phone(
        self,
        seat: str,
        answer_after_s: float | None = None,
        talk_s: float | None = None,
        busy: bool = False,
        unavailable: bool = False,
    ) -> None:
        """How a seat's phone behaves from now on (seat id like `seat1`, or its interface)."""
        key = self._seat_key(seat)
        self.engine.pbx.set_phone(
            key,
            PhoneSpec(
                answer_after_s=answer_after_s, talk_s=talk_s, busy=busy, unavailable=unavailable
            ),
        )

    def _seat_key(self, seat: str) -> str:
        for spec in self.config.seats:
            if seat in (spec.id, spec.interface):
                return spec.device_key
        return device_key(seat) if "/" in seat else seat

    def place_call(
        self,
        number: str,
        name: str,
        digits: str | Sequence[str | None] | None = "1",
        *,
        hangup_after_s: float | None = None,
        hangup_in_ivr_after_s: float | None = None,
        talk_s: float | None = None,
        trunk: bool = False,
    ) -> SimCall:
        """A caller dials the hotline. `digits` answers the IVR's input commands one entry each
        (a str is one entry per character; None is silence); afterwards the caller stays silent.
        `hangup_after_s` counts from the call's start, `hangup_in_ivr_after_s` from the IVR's
        start (only if still in the IVR), `talk_s` from the moment a seat answers."""
        if self._restarting:
            raise SimulatorError("the PBX is restarting")
        public = SimCall(number, name)
        plan = CallerPlan(
            mode="sim",
            script=DigitScript(digits),
            hangup_after_s=hangup_after_s,
            hangup_in_ivr_after_s=hangup_in_ivr_after_s,
            talk_s=talk_s,
        )
        self.engine.dialplan.start_hotline_call(public, plan, [], trunk=trunk)
        return public

    def drop_ami_links(self) -> None:
        """Network blip: every AMI socket closes; calls carry on."""
        self._server.drop_all()

    def stall_ami(self, stalled: bool) -> None:
        """Half-open links: stop reading and writing on AMI sockets (they stay open)."""
        self._server.set_stalled(stalled)

    def fragment_ami(self, size: int | None) -> None:
        """Write AMI output in `size`-byte pieces, a millisecond apart (None: whole batches), so a
        client sees frames — and multi-byte UTF-8 characters — split across reads."""
        self._server.fragment = size

    def refuse_logins(self, refuse: bool) -> None:
        self._refuse_logins = refuse

    async def restart(self, down_s: float = 1.0) -> None:
        """PBX restart: channels vanish silently, AMI is down for `down_s`, queues reload from
        config (dynamic members and pauses are gone), ids keep counting up."""
        engine = self.engine
        self._restarting = True
        await self._server.stop()
        engine.vanish_all()
        await asyncio.sleep(down_s)
        engine.pbx.boot = engine.pbx.loop.time()
        engine.pbx.load_config()
        await self._server.start()
        self._restarting = False

    def channels(self) -> list[str]:
        """Names of the channels that exist now, oldest first."""
        return list(self.engine.pbx.channels)

    def channel(self, name: str) -> Chan | None:
        return self.engine.pbx.channels.get(name)

    def queue_members(self, queue: str) -> list[MemberInfo]:
        return self.engine.members.member_infos(queue)

    @property
    def calls(self) -> list[SimCall]:
        return [c.public for c in self.engine.pbx.calls]

    def prime_device_state(self, device: str, state: str | None) -> None:
        """Pretend the PBX already published `state` for a cachable device (no event)."""
        self.engine.pbx.prime_device_state(device, state)

    def set_epoch(self, epoch: float) -> None:
        """Anchor the simulated wall clock (Uniqueid, Timestamp): it reads `epoch` now."""
        self.engine.pbx.set_epoch(epoch)

    def set_rr_position(self, queue: str, position: int) -> None:
        """Where rrmemory continues (the lab PBX carried it over between recordings)."""
        q = self.engine.pbx.queues.get(queue)
        if q is None:
            raise SimulatorError(f"no queue {queue!r}")
        q.rrpos = position

    # ------------------------------------------------------------------ background load
    def start_background_load(self, events_per_s: float, batch_s: float = 0.01) -> None:
        """Stream a recorded-style mix of call events on fake channels at `events_per_s`
        (for benchmarks); frames are pre-encoded and written once per batch."""
        if self._background is not None:
            self._background.cancel()
        self._background = asyncio.get_running_loop().create_task(
            self._background_load(events_per_s, batch_s)
        )

    def stop_background_load(self) -> None:
        if self._background is not None:
            self._background.cancel()
            self._background = None

    async def _background_load(self, rate: float, batch_s: float) -> None:
        frames = _background_mix()
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        i = 0
        while True:
            due = int((loop.time() - start) * rate) - sent
            if due > 0:
                chunk: dict[str, list[bytes]] = {}
                for _ in range(due):
                    klass, data = frames[i % len(frames)]
                    chunk.setdefault(klass, []).append(data)
                    i += 1
                for klass, datas in chunk.items():
                    self._server.broadcast(klass, b"".join(datas))
                sent += due
            await asyncio.sleep(batch_s)

    # ------------------------------------------------------------------ AMI dispatch
    def _dispatch(self, s: AmiSession, f: Pairs) -> None:
        action = header(f, "Action")
        if self._record_actions:
            self.actions_received.append((action, _first_wins(f)))
        low = action.lower()
        if not action:
            s.respond(f, "Error", [("Message", "Missing action in request")])
            return
        if not s.authenticated and low not in ("login", "logoff", "challenge"):
            s.respond(f, "Error", [("Message", "Permission denied")])
            return
        handler = self._handlers().get(low)
        if handler is None:
            s.respond(f, "Error", [("Message", UNKNOWN_CMD.format(action))])
            return
        handler(s, f)

    def _handlers(self) -> dict[str, Handler]:
        return {
            "login": self._login,
            "logoff": self._logoff,
            "ping": self._ping,
            "events": self._events,
            "originate": self._originate,
            "hangup": self._hangup,
            "redirect": self._redirect,
            "absolutetimeout": self._absolute_timeout,
            "getvar": self._getvar,
            "setvar": self._setvar,
            "queuepause": self._queue_pause,
            "queueadd": self._queue_add,
            "queueremove": self._queue_remove,
            "queuepenalty": self._queue_penalty,
            "queuestatus": self._queue_status,
            "queuesummary": self._queue_summary,
            "coreshowchannels": self._core_show_channels,
            "dbput": self._db_put,
            "dbget": self._db_get,
            "dbdel": self._db_del,
            "dbdeltree": self._db_deltree,
        }

    # -- session
    def _login(self, s: AmiSession, f: Pairs) -> None:
        username = header(f, "Username")
        secret = header(f, "Secret")
        user = next((u for u in self.config.users if u.username == username), None)
        if s.authenticated:
            s.respond(f, "Success", [("Message", "Authentication accepted")])
            return
        if self._refuse_logins or user is None or user.secret != secret:
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

    # -- calls
    def _originate(self, s: AmiSession, f: Pairs) -> None:
        channel = header(f, "Channel")
        if not channel:
            s.respond(f, "Error", [("Message", "Channel not specified")])
            return
        priority = header(f, "Priority")
        if priority and not priority.strip().isdigit():
            s.respond(f, "Error", [("Message", "Invalid priority")])
            return
        exten = header(f, "Exten")
        context = header(f, "Context")
        app = header(f, "Application")
        data = header(f, "Data")
        cid_num, cid_name = parse_callerid(header(f, "CallerID"))
        variables = parse_variables(headers(f, "Variable"))
        action_id = header(f, "ActionID")
        is_async = is_true(header(f, "Async"))
        if is_async:
            s.respond(f, "Success", [("Message", "Originate successfully queued")])
        else:
            s.busy = True
        loop = asyncio.get_running_loop()

        def report(ok: bool, chan: Chan | None, reason: int) -> None:
            if is_async:
                self._originate_response(
                    action_id,
                    ok,
                    chan,
                    channel,
                    context,
                    exten,
                    app,
                    data,
                    reason,
                    cid_num,
                    cid_name,
                )
            else:
                if ok:
                    s.respond(f, "Success", [("Message", "Originate successfully queued")])
                else:
                    s.respond(f, "Error", [("Message", "Originate failed")])
                s.resume()

        def go() -> None:
            try:
                self._do_originate(
                    channel,
                    context,
                    exten,
                    int(priority or "1"),
                    app,
                    data,
                    (cid_num, cid_name),
                    variables,
                    report,
                )
            except Exception:  # one action ends here
                log.exception("pbx_sim_originate_failed", channel=channel)
                report(False, None, 0)

        loop.call_soon(go)

    def _originate_response(
        self,
        action_id: str,
        ok: bool,
        chan: Chan | None,
        channel: str,
        context: str,
        exten: str,
        app: str,
        data: str,
        reason: int,
        cid_num: str,
        cid_name: str,
    ) -> None:
        body: Pairs = []
        if action_id:
            body.append(("ActionID", action_id))
        body.append(("Response", "Success" if ok else "Failure"))
        body.append(("Channel", chan.name if chan is not None else channel))
        if app:
            body += [("Application", app), ("Data", data)]
        else:
            body += [("Context", context), ("Exten", exten)]
        body += [
            ("Reason", str(reason)),
            ("Uniqueid", chan.uniqueid if chan is not None else "<null>"),
            ("CallerIDNum", cid_num or "<unknown>"),
            ("CallerIDName", cid_name or "<unknown>"),
        ]
        self.engine.pbx.ev("OriginateResponse", PRIV_CALL, body)

    def _do_originate(
        self,
        channel: str,
        context: str,
        exten: str,
        priority: int,
        app: str,
        data: str,
        cid: tuple[str, str],
        variables: list[tuple[str, str]],
        report: Report,
    ) -> None:
        cfg = self.config
        tech, _, resource = channel.partition("/")
        if tech.lower() == "local":
            target = resource[:-2] if resource.endswith("/n") else resource
            lexten, _, lcontext = target.partition("@")
            if lcontext == cfg.hotline_context and lexten == cfg.hotline_exten:
                self._originate_hotline(context, exten, app, data, cid, variables, report)
                return
            if lcontext == "supervisor":
                self._originate_supervisor_local(lexten, app, data, cid, report)
                return
        elif tech.upper() == "PJSIP" and resource in cfg.supervisor_endpoints:
            self._originate_supervisor_pjsip(resource, app, data, cid, report)
            return
        report(False, None, 0)

    def _originate_hotline(
        self,
        context: str,
        exten: str,
        app: str,
        data: str,
        cid: tuple[str, str],
        variables: list[tuple[str, str]],
        report: Report,
    ) -> None:
        public = SimCall(cid[0], cid[1])
        vars_ = dict(variables)
        if app:
            plan = CallerPlan(mode="app", app=app, app_data=data)
        elif context == "callerside":
            plan = CallerPlan(
                mode="lab",
                lab_ivr=vars_.get("IVR", ""),
                lab_stay=float_or_none(vars_.get("STAY")) or 0.0,
            )
        else:
            plan = CallerPlan(mode="sim", script=DigitScript(None))

        def answered(call: Call) -> None:
            report(True, call.one, 4)

        self.engine.dialplan.start_hotline_call(public, plan, variables, on_answer=answered)

    def _originate_supervisor_local(
        self, lexten: str, app: str, data: str, cid: tuple[str, str], report: Report
    ) -> None:
        engine = self.engine
        one, two = engine.pbx.new_local_pair(lexten, "supervisor")
        one.role, two.role = "spy_one", "spy_two"
        engine.pbx.newexten(one, "AppDial2", "(Outgoing Line)")
        if cid[0] or cid[1]:
            one.cid_num, one.cid_name = cid
            engine.pbx.newcallerid(one)
            one.conn_num, one.conn_name = cid
            engine.pbx.newconnectedline(one)
            two.cid_num, two.cid_name = cid
            two.conn_num, two.conn_name = cid
            engine.pbx.newcallerid(two)
            engine.pbx.newconnectedline(two)
        engine.pbx.local_bridge(one, two, "supervisor", lexten, optimize=True)
        engine.pbx.dial_event("DialBegin", None, one, [("DialString", f"{lexten}@supervisor")])
        engine.pbx.newexten(two, "Answer", "", 1)
        engine.pbx.newstate(two, UP)
        device = device_of(one)
        engine.pbx.dsc(device, "INUSE")
        engine.pbx.newstate(one, UP)
        engine.pbx.dial_event("DialEnd", None, one, [("DialStatus", "ANSWER")])
        engine.pbx.dsc(device, "INUSE")
        report(True, one, 4)
        two.task = engine.pbx.spawn(engine.spy.supervisor_program(two), f"supervisor-{two.name}")
        if app.lower() == "chanspy":
            engine.spy.start_spy(one, data)
        elif app.lower() == "wait":
            one.app, one.appdata = app, data

    def _originate_supervisor_pjsip(
        self, endpoint: str, app: str, data: str, cid: tuple[str, str], report: Report
    ) -> None:
        """A supervisor's own phone (not in the recordings): it rings and answers at once."""
        engine = self.engine
        chan = engine.pbx.new_pjsip(endpoint, DOWN, "supervisor", "s")
        chan.role = "spy_pjsip"
        if cid[0] or cid[1]:
            chan.cid_num, chan.cid_name = cid
            chan.conn_num, chan.conn_name = cid
            engine.pbx.newcallerid(chan)
            engine.pbx.newconnectedline(chan)
        engine.pbx.newstate(chan, RINGING)
        engine.pbx.cached_dsc(device_of(chan), "RINGING")

        def answer() -> None:
            if not chan.alive:
                report(False, None, 0)
                return
            engine.pbx.newstate(chan, UP)
            engine.pbx.cached_dsc(device_of(chan), "INUSE")
            report(True, chan, 4)
            if app.lower() == "chanspy":
                engine.spy.start_spy(chan, data)

        engine.pbx.later(0.0, answer)

    def _find_channel(self, s: AmiSession, f: Pairs, name: str) -> Chan | None:
        return self.engine.pbx.channels.get(name)

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
            aid = header(f, "ActionID")
            s.respond(
                f, "Success", [("EventList", "start"), ("Message", "Channels hung up will follow")]
            )
            for chan in targets:
                body: Pairs = [("Event", "ChannelHungup"), ("Channel", chan.name)]
                if aid:
                    body.append(("ActionID", aid))
                s.send(encode(body))
            done: Pairs = [("Event", "ChannelsHungupListComplete")]
            if aid:
                done.append(("ActionID", aid))
            done += [("EventList", "Complete"), ("ListItems", str(len(targets)))]
            s.send(encode(done))
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

    def _getvar(self, s: AmiSession, f: Pairs) -> None:
        var = header(f, "Variable")
        if not var:
            s.respond(f, "Error", [("Message", "No variable specified")])
            return
        name = header(f, "Channel")
        if name:
            chan = self.engine.pbx.channels.get(name)
            if chan is None:
                s.respond(f, "Error", [("Message", "No such channel")])
                return
            value = self.engine.pbx.get_var(chan, var) or ""
        else:
            value = self._globals.get(var, "")
        s.respond(f, "Success", [("Variable", var), ("Value", value)])

    def _setvar(self, s: AmiSession, f: Pairs) -> None:
        var = header(f, "Variable")
        if not var:
            s.respond(f, "Error", [("Message", "No variable specified")])
            return
        value = header(f, "Value")
        name = header(f, "Channel")
        if name:
            chan = self.engine.pbx.channels.get(name)
            if chan is None:
                s.respond(f, "Error", [("Message", "No such channel")])
                return
            s.respond(f, "Success", [("Message", "Variable Set")])
            self.engine.pbx.set_var(chan, var, value)
            return
        self._globals[var] = value
        s.respond(f, "Success", [("Message", "Variable Set")])

    # -- queues
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

    def _list_ack(self, s: AmiSession, f: Pairs, message: str) -> None:
        s.respond(f, "Success", [("EventList", "start"), ("Message", message)])

    def _list_done(self, s: AmiSession, f: Pairs, event: str, count: int) -> None:
        body: Pairs = [("Event", event)]
        aid = header(f, "ActionID")
        if aid:
            body.append(("ActionID", aid))
        body += [("EventList", "Complete"), ("ListItems", str(count))]
        s.send(encode(body))

    def _queue_status(self, s: AmiSession, f: Pairs) -> None:
        engine = self.engine
        want_q = header(f, "Queue")
        want_m = header(f, "Member")
        aid = header(f, "ActionID")
        tail: Pairs = [("ActionID", aid)] if aid else []
        self._list_ack(s, f, "Queue status will follow")
        count = 0
        now = engine.pbx.now()
        for q in engine.pbx.queues.values():
            if want_q and q.name != want_q:
                continue
            if not want_m:
                s.send(
                    encode(
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
                            *tail,
                        ]
                    )
                )
                count += 1
            for m in q.members:
                if want_m and want_m not in (m.interface, m.name):
                    continue
                s.send(encode([("Event", "QueueMember"), *m.status_fields(), *tail]))
                count += 1
            if not want_m:
                for pos, entry in enumerate(q.callers, start=1):
                    c = entry.chan
                    s.send(
                        encode(
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
                                *tail,
                            ]
                        )
                    )
                    count += 1
        self._list_done(s, f, "QueueStatusComplete", count)

    def _queue_summary(self, s: AmiSession, f: Pairs) -> None:
        engine = self.engine
        want_q = header(f, "Queue")
        aid = header(f, "ActionID")
        tail: Pairs = [("ActionID", aid)] if aid else []
        self._list_ack(s, f, "Queue summary will follow")
        count = 0
        now = engine.pbx.now()
        for q in engine.pbx.queues.values():
            if want_q and q.name != want_q:
                continue
            logged_in = [m for m in q.members if m.status not in (4, 5)]
            available = [m for m in logged_in if m.status in (0, 1) and not m.paused]
            longest = max((int(now - e.start) for e in q.callers), default=0)
            s.send(
                encode(
                    [
                        ("Event", "QueueSummary"),
                        ("Queue", q.name),
                        ("LoggedIn", str(len(logged_in))),
                        ("Available", str(len(available))),
                        ("Callers", str(len(q.callers))),
                        ("HoldTime", str(q.holdtime)),
                        ("TalkTime", str(q.talktime)),
                        ("LongestHoldTime", str(longest)),
                        *tail,
                    ]
                )
            )
            count += 1
        self._list_done(s, f, "QueueSummaryComplete", count)

    def _core_show_channels(self, s: AmiSession, f: Pairs) -> None:
        engine = self.engine
        aid = header(f, "ActionID")
        head: Pairs = [("ActionID", aid)] if aid else []
        self._list_ack(s, f, "Channels will follow")
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
        self._list_done(s, f, "CoreShowChannelsComplete", count)

    # -- AstDB
    def _db_put(self, s: AmiSession, f: Pairs) -> None:
        family, key = header(f, "Family"), header(f, "Key")
        if not family:
            s.respond(f, "Error", [("Message", "No family specified")])
            return
        if not key:
            s.respond(f, "Error", [("Message", "No key specified")])
            return
        self.engine.pbx.db[(family, key)] = header(f, "Val")
        s.respond(f, "Success", [("Message", "Updated database successfully")])

    def _db_get(self, s: AmiSession, f: Pairs) -> None:
        family, key = header(f, "Family"), header(f, "Key")
        if not family:
            s.respond(f, "Error", [("Message", "No family specified.")])
            return
        if not key:
            s.respond(f, "Error", [("Message", "No key specified.")])
            return
        value = self.engine.pbx.db.get((family, key))
        if value is None:
            s.respond(f, "Error", [("Message", "Database entry not found")])
            return
        self._list_ack(s, f, "Result will follow")
        aid = header(f, "ActionID")
        body: Pairs = [("Event", "DBGetResponse"), ("Family", family), ("Key", key), ("Val", value)]
        if aid:
            body.append(("ActionID", aid))
        s.send(encode(body))
        self._list_done(s, f, "DBGetComplete", 1)

    def _db_del(self, s: AmiSession, f: Pairs) -> None:
        family, key = header(f, "Family"), header(f, "Key")
        if not family:
            s.respond(f, "Error", [("Message", "No family specified.")])
            return
        if not key:
            s.respond(f, "Error", [("Message", "No key specified.")])
            return
        if self.engine.pbx.db.pop((family, key), None) is None:
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


def lab(ami_port: int = 0, agi_port: int = 4573, agi_host: str = "127.0.0.1") -> PbxSimulator:
    """The simulated lab PBX of the recordings (see `lab_config`)."""
    return PbxSimulator(lab_config(ami_port=ami_port, agi_port=agi_port, agi_host=agi_host))


def _background_mix() -> list[tuple[str, bytes]]:
    """A pre-encoded mix shaped like the recordings (Newexten/VarSet-heavy), on fake channels."""
    from ctid.asterisk.simulator.wire import encode_event

    frames: list[tuple[str, bytes]] = []
    for n in range(200):
        name = f"Local/bg{n % 50}@noise-{n:08x};2"
        block: Pairs = [
            ("Channel", name),
            ("ChannelState", "6"),
            ("ChannelStateDesc", "Up"),
            ("CallerIDNum", f"1390000{n:04d}"),
            ("CallerIDName", "Background"),
            ("ConnectedLineNum", "<unknown>"),
            ("ConnectedLineName", "<unknown>"),
            ("Language", "en"),
            ("AccountCode", ""),
            ("Context", "noise"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Uniqueid", f"1795000000.{n}"),
            ("Linkedid", f"1795000000.{n}"),
        ]
        ts = f"1795000000.{n:06d}"
        frames.append(
            (
                "dialplan",
                encode_event(
                    "Newexten",
                    "dialplan",
                    ts,
                    [*block, ("Extension", "s"), ("Application", "Wait"), ("AppData", "1")],
                ),
            )
        )
        frames.append(
            (
                "dialplan",
                encode_event(
                    "VarSet", "dialplan", ts, [*block, ("Variable", "BG"), ("Value", str(n))]
                ),
            )
        )
        frames.append(
            (
                "call",
                encode_event(
                    "DeviceStateChange",
                    "call",
                    ts,
                    [("Device", f"Local/bg{n % 50}@noise"), ("State", "INUSE")],
                ),
            )
        )
        frames.append(("call", encode_event("Newstate", "call", ts, block)))
    return frames


def _first_wins(pairs: Pairs) -> dict[str, str]:
    """An action's headers as Asterisk reads them: the first of a repeated header wins."""
    out: dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(name, value)
    return out
