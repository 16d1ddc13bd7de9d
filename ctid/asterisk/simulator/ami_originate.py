"""The AMI Originate action: hotline calls like the lab's callers, supervisor phones (Local or
PJSIP) running ChanSpy, and the OriginateResponse of an async Originate.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import structlog

from ctid.asterisk.simulator.ami_server import AmiSession
from ctid.asterisk.simulator.config import SimulatorConfig
from ctid.asterisk.simulator.engine import Engine
from ctid.asterisk.simulator.model import (
    CallerPlan,
    Chan,
    DigitScript,
    HotlineCall,
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
    header,
    headers,
    is_true,
)

log = structlog.get_logger(__name__)

Report = Callable[[bool, Chan | None, int], None]


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


class Originator:
    """Runs Originate actions."""

    def __init__(self, config: SimulatorConfig, engine: Callable[[], Engine]) -> None:
        self.config = config
        self._engine = engine

    @property
    def engine(self) -> Engine:
        return self._engine()

    def originate(self, s: AmiSession, f: Pairs) -> None:
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
            dial_local = ""
            if not app and context == "ctid-spy" and re.fullmatch(r"spy[0-9]+", exten):
                # contrib's [ctid-spy] spy<id>: Dial(Local/spy<id>@ctid-spy-run/n), ;2 spies
                dial_local = exten
            elif not app and context == "ctid-spy":
                # the older [ctid-spy] of the pjsip_spy_* recordings: ChanSpy on the phone itself
                app, data = "ChanSpy", "${CTID_SPY_CHANNEL},${CTID_SPY_OPTIONS}"
            self._originate_supervisor_pjsip(
                resource, app, data, cid, variables, report, dial_local=dial_local
            )
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

        def answered(call: HotlineCall) -> None:
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
        self,
        endpoint: str,
        app: str,
        data: str,
        cid: tuple[str, str],
        variables: list[tuple[str, str]],
        report: Report,
        dial_local: str = "",
    ) -> None:
        """A supervisor's own phone (pjsip_spy_*): it rings `supervisor_answer_s`, answers, then
        runs the application (ChanSpy, with `${…}` taken from the Originate's variables), or
        with `dial_local` Dials the Local channel whose `;2` runs ChanSpy."""
        pbx = self.engine.pbx
        spy = self.engine.spy
        name = self.config.endpoint_names.get(endpoint)
        own = (endpoint, name) if name is not None else ("", "")
        chan = pbx.new_pjsip(endpoint, DOWN, "supervisor", "s", cid=own)
        chan.role = "spy_pjsip"
        for name, value in reversed(variables):
            pbx.varset(chan, name, value)
        if cid[0] or cid[1]:
            chan.cid_num, chan.cid_name = cid
            chan.conn_num, chan.conn_name = cid
            pbx.newcallerid(chan)
            pbx.newconnectedline(chan)
        pbx.dial_event("DialBegin", None, chan, [("DialString", endpoint)])
        pbx.newstate(chan, RINGING)
        pbx.cached_dsc(device_of(chan), "RINGING")
        pbx.dial_event("DialState", None, chan, [("DialStatus", "RINGING")])

        def answer() -> None:
            if not chan.alive:
                report(False, None, 0)
                return
            pbx.newstate(chan, UP)
            pbx.cached_dsc(device_of(chan), "INUSE")
            pbx.dial_event("DialEnd", None, chan, [("DialStatus", "ANSWER")])
            report(True, chan, 4)
            if dial_local:
                spy.dial_local_spy(chan, dial_local)
            elif app.lower() == "chanspy":
                spy.start_spy(chan, pbx.substitute(chan, data))

        pbx.later(self.config.supervisor_answer_s, answer)
