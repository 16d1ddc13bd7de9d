"""`PbxSimulator`: the public face of the simulated Asterisk 22 — the test knobs (phones, callers,
faults), AMI dispatch to `AmiActions`, and its lifecycle as an async context manager.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING

import structlog

from ctid.asterisk.simulator.ami_actions import AmiActions
from ctid.asterisk.simulator.ami_server import AmiServer, AmiSession
from ctid.asterisk.simulator.config import PhoneSpec, SimulatorConfig, device_key, lab_config
from ctid.asterisk.simulator.engine import Engine
from ctid.asterisk.simulator.model import (
    CallerPlan,
    Chan,
    DigitScript,
    MemberInfo,
    SimCall,
)
from ctid.asterisk.simulator.wire import (
    Pairs,
    header,
)
from ctid.core.errors import CtidError

if TYPE_CHECKING:
    from ctid.config import Config

log = structlog.get_logger(__name__)


class SimulatorError(CtidError):
    """The simulator was used wrongly (not started, unknown queue or seat)."""


UNKNOWN_CMD = "Invalid/unknown command: {}. Use Action: ListCommands to show available commands."


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
        self._actions = AmiActions(self.config, self._current_engine)
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

    def _current_engine(self) -> Engine:
        return self.engine

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise SimulatorError("the simulator is not started (use `async with`)")
        return self._engine

    @property
    def ami_port(self) -> int:
        return self._server.port

    def set_phone(
        self,
        seat: str,
        answer_after_s: float | None = None,
        talk_s: float | None = None,
        busy: bool = False,
        unavailable: bool = False,
        sends_audio: bool = True,
    ) -> None:
        """How a seat's phone behaves from now on (seat id like `seat1`, or its interface);
        `sends_audio=False`: a phone that sends no RTP (see `PhoneSpec`)."""
        key = self._seat_key(seat)
        self.engine.pbx.set_phone(
            key,
            PhoneSpec(
                answer_after_s=answer_after_s,
                talk_s=talk_s,
                busy=busy,
                unavailable=unavailable,
                sends_audio=sends_audio,
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
        trunk: bool | None = None,
        dtmf_at: Sequence[tuple[float, str]] = (),
        sends_audio: bool = True,
    ) -> SimCall:
        """A caller dials the hotline. `digits` answers the IVR's input commands one entry each
        (a str is one entry per character; None is silence); afterwards the caller stays silent.
        `dtmf_at` instead sends digits at fixed times after the call was answered, whether or not
        anything listens (a SIP phone's RFC 4733 digits). `hangup_after_s` counts from the call's
        start, `hangup_in_ivr_after_s` from the IVR's start (only if still in the IVR), `talk_s`
        from the moment a seat answers. `trunk`: a PJSIP trunk call (`PJSIP/<number>-…`) rather
        than the lab's Local/4000@hotline (default: the config's `callers_on_trunk`).
        `sends_audio=False`: the caller sends no RTP."""
        if self._restarting:
            raise SimulatorError("the PBX is restarting")
        public = SimCall(number, name)
        plan = CallerPlan(
            mode="sim",
            script=DigitScript(digits),
            hangup_after_s=hangup_after_s,
            hangup_in_ivr_after_s=hangup_in_ivr_after_s,
            talk_s=talk_s,
            dtmf_at=tuple(dtmf_at),
            sends_audio=sends_audio,
        )
        on_trunk = self.config.callers_on_trunk if trunk is None else trunk
        self.engine.dialplan.start_hotline_call(public, plan, [], trunk=on_trunk)
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

    def wedge_hangups(self, prefix: str, wedged: bool = True) -> None:
        """Channels whose name starts with `prefix` take Hangup requests (`Success`) but never
        end, like a channel stuck in its driver (tests the "leg cannot be ended" path)."""
        if wedged:
            self.engine.pbx.wedged.add(prefix)
        else:
            self.engine.pbx.wedged.discard(prefix)

    def refuse_logins(self, refuse: bool) -> None:
        self._actions.refuse_logins = refuse

    async def restart(self, down_s: float = 1.0) -> None:
        """PBX restart: channels vanish silently, AMI is down for `down_s`, queues reload from
        config (dynamic members and pauses are gone), channel numbers and Uniqueids start again at 0,
        the queue_log gets QUEUESTART."""
        engine = self.engine
        self._restarting = True
        await self._server.stop()
        engine.vanish_all()
        await asyncio.sleep(down_s)
        engine.pbx.reboot()
        await self._server.start()
        self._restarting = False

    @property
    def queue_log(self) -> list[str]:
        """Every queue_log line app_queue wrote since `start()` (restarts included), oldest first,
        without newlines; also appended to `config.queue_log_path` when that is set."""
        return list(self.engine.pbx.queue_log.lines)

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
        handler = self._actions.handlers().get(low)
        if handler is None:
            s.respond(f, "Error", [("Message", UNKNOWN_CMD.format(action))])
            return
        handler(s, f)


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
    """An action's headers as Asterisk reads them: the first of a repeated header wins, except
    `Variable`, which Asterisk reads from every header (joined here by `,`, its own separator)."""
    out: dict[str, str] = {}
    for name, value in pairs:
        if name == "Variable" and name in out:
            out[name] += f",{value}"
        out.setdefault(name, value)
    return out
