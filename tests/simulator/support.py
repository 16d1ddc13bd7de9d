"""Test-side tools for the simulator: a tiny AMI client, a scripted FastAGI server, and the
transcript comparator (normalised ids, timing tolerance, order up to Asterisk's own races)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from tests.paths import TRANSCRIPTS

"""Copies of the Asterisk 22.10.1 recordings (shared/ami-transcripts, byte for byte)."""

Pairs = list[tuple[str, str]]

COMPARED = (  # noqa: SIM905 (one string reads like the brief's list)
    "Event Channel ChannelStateDesc CallerIDNum CallerIDName Uniqueid Linkedid Context Exten Queue "
    "Position Count Interface MemberName DestChannel DestUniqueid RingTime Reason Cause Paused "
    "PausedReason Status InCall Penalty Membership Variable Value SpyerChannel SpyeeChannel "
    "Application ApplicationData BridgeId EventList ListItems Location Name Response Message"
    " Device State DialStatus"
).split()


async def until(pred: Callable[[], bool], within: float = 5.0, what: str = "condition") -> None:
    """Wait until `pred()` holds, checking every 10 ms; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not pred():
        if loop.time() >= deadline:
            raise AssertionError(f"{what} did not hold within {within} s")
        await asyncio.sleep(0.01)


async def refused(port: int, within: float = 5.0) -> None:
    """Wait until a TCP connection to `port` on 127.0.0.1 is refused; fail after `within` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        writer.close()
        if loop.time() >= deadline:
            raise AssertionError(f"port {port} still accepts connections after {within} s")
        await asyncio.sleep(0.01)


def parse_frame(raw: str) -> Pairs:
    pairs: Pairs = []
    for line in raw.split("\r\n"):
        if not line:
            continue
        name, _, value = line.partition(":")
        pairs.append((name, value[1:] if value.startswith(" ") else value))
    return pairs


def get(pairs: Pairs, name: str) -> str | None:
    for k, v in pairs:
        if k == name:
            return v
    return None


class AmiTestClient:
    """Connects, records every frame it receives with the loop time since connecting."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, Pairs]] = []
        self.banner = b""
        self.eof = asyncio.Event()
        self.eof_at: float | None = None
        self.t0 = 0.0
        self._new = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", port)
        self.t0 = loop.time()
        self.banner = await self._reader.readline()
        self._task = loop.create_task(self._read())

    def now(self) -> float:
        return asyncio.get_running_loop().time() - self.t0

    async def _read(self) -> None:
        assert self._reader is not None
        buf = b""
        while True:
            data = await self._reader.read(65536)
            if not data:
                self.eof_at = self.now()
                self.eof.set()
                self._new.set()
                return
            buf += data
            while b"\r\n\r\n" in buf:
                raw, buf = buf.split(b"\r\n\r\n", 1)
                self.frames.append((self.now(), parse_frame(raw.decode())))
                self._new.set()

    def send_raw(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)

    def send(self, **headers: str) -> None:
        self.send_raw(("".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode())

    async def wait_for(self, pred: Callable[[Pairs], bool], within: float = 5.0) -> Pairs:
        """The first frame (already received or coming) that satisfies `pred`."""
        seen = 0

        async def scan() -> Pairs:
            nonlocal seen
            while True:
                while seen < len(self.frames):
                    frame = self.frames[seen][1]
                    seen += 1
                    if pred(frame):
                        return frame
                if self.eof.is_set():
                    raise EOFError("AMI connection closed")
                self._new.clear()
                await self._new.wait()

        return await asyncio.wait_for(scan(), within)

    async def wait_event(self, name: str, within: float = 5.0, **match: str) -> Pairs:
        def pred(f: Pairs) -> bool:
            return get(f, "Event") == name and all(get(f, k) == v for k, v in match.items())

        return await self.wait_for(pred, within)

    async def action(self, within: float = 5.0, **headers: str) -> Pairs:
        aid = headers.setdefault("ActionID", f"t-{len(self.frames)}-{id(headers)}")
        self.send(**headers)
        return await self.wait_for(
            lambda f: get(f, "ActionID") == aid and get(f, "Response") is not None, within
        )

    async def login(self, port: int, username: str = "ctid", secret: str = "ctidlab") -> Pairs:
        await self.connect(port)
        return await self.action(Action="Login", Username=username, Secret=secret)

    async def wait_count(self, name: str, n: int, within: float = 5.0) -> list[Pairs]:
        """The first `n` events called `name`, waiting for them to arrive."""
        seen: list[Pairs] = []

        def pred(f: Pairs) -> bool:
            if get(f, "Event") == name:
                seen.append(f)
            return len(seen) >= n

        await self.wait_for(pred, within)
        return seen

    def events(self, name: str | None = None) -> list[Pairs]:
        return [
            f
            for _, f in self.frames
            if get(f, "Event") and (name is None or get(f, "Event") == name)
        ]

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class ScriptedAgiServer:
    """A FastAGI server that sends a fixed list of command lines, reading one line after each
    (exactly what the lab's recorded server did), then closes. Records what it received."""

    def __init__(self, commands: list[str] | None = None) -> None:
        self.commands = commands if commands is not None else []
        self.received: list[str] = []
        self.envs: list[dict[str, str]] = []
        self.connections = 0
        self.done = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None
        self.script_for: Callable[[dict[str, str]], list[str]] | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        env: dict[str, str] = {}
        env_lines: list[str] = []
        try:
            while True:
                line = (await reader.readline()).decode()
                if line in ("\n", ""):
                    break
                env_lines.append(line)
                key, _, value = line.rstrip("\n").partition(": ")
                env[key] = value
            self.envs.append(env)
            self.received.append("".join(env_lines) + "\n")
            script = self.script_for(env) if self.script_for is not None else self.commands
            for cmd in script:
                writer.write(cmd.encode())
                await writer.drain()
                reply = await reader.readline()
                if not reply:
                    break
                self.received.append(reply.decode())
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
            self.done.set()


# ---------------------------------------------------------------- transcripts


@dataclass
class Transcript:
    name: str
    entries: list[dict[str, object]]

    @classmethod
    def load(cls, name: str) -> Transcript:
        path = TRANSCRIPTS / f"{name}.jsonl"
        return cls(name, [json.loads(line) for line in path.read_text().splitlines() if line])

    @property
    def connect_t(self) -> float:
        for e in self.entries:
            if e["dir"] == "in":
                return float(e["t"])  # type: ignore[arg-type]
        return 0.0

    def outs(self) -> list[tuple[float, str]]:
        c = self.connect_t
        return [(float(e["t"]) - c, str(e["raw"])) for e in self.entries if e["dir"] == "out"]  # type: ignore[arg-type]

    def ins(self) -> list[tuple[float, Pairs]]:
        c = self.connect_t
        out = []
        for e in self.entries:
            raw = str(e["raw"])
            if e["dir"] == "in" and raw.endswith("\r\n\r\n"):
                out.append((float(e["t"]) - c, parse_frame(raw[:-4])))  # type: ignore[arg-type]
        return out

    def agi_in(self) -> list[str]:
        return [str(e["raw"]) for e in self.entries if e["dir"] == "agi-in"]

    def agi_out(self) -> list[str]:
        return [str(e["raw"]) for e in self.entries if e["dir"] == "agi-out"]

    def first_epoch(self) -> tuple[float, float]:
        """(t since connect, epoch) of the first Timestamp header."""
        for t, f in self.ins():
            ts = get(f, "Timestamp")
            if ts:
                return t, float(ts)
        raise ValueError("no Timestamp in transcript")

    def existing_db_keys(self) -> list[tuple[str, str]]:
        """Keys the lab's AstDB held when the recording began (DBDel answered Success)."""
        outs = [parse_frame(str(e["raw"])[:-4]) for e in self.entries if e["dir"] == "out"]
        by_id = {get(f, "ActionID"): f for f in outs}
        keys = []
        for _, f in self.ins():
            req = by_id.get(get(f, "ActionID"))
            if req and get(req, "Action") == "DBDel" and get(f, "Response") == "Success":
                keys.append((get(req, "Family") or "", get(req, "Key") or ""))
        return keys


_CHAN_SEQ = re.compile(r"(?P<base>(?:Local|PJSIP)/[^\s;|-]+(?:@[^\s;|-]+)?)-(?P<seq>[0-9a-f]{8})")
_UID = re.compile(r"^\d{9,11}\.\d+$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
FUZZY_MS = {"ANSWEREDTIME_MS", "DIALEDTIME_MS"}


class Normaliser:
    """Replaces ids by their order of first appearance: `Local/seat1@phones-<c0>;1`, `<u3>`."""

    def __init__(self) -> None:
        self.seqs: dict[str, str] = {}
        self.uids: dict[str, str] = {}
        self.bridges: dict[str, str] = {}

    def value(self, v: str) -> str:
        if _UID.match(v):
            return self.uids.setdefault(v, f"<u{len(self.uids)}>")
        if _UUID.match(v):
            return self.bridges.setdefault(v, f"<b{len(self.bridges)}>")

        def seq(m: re.Match[str]) -> str:
            s = m.group("seq")
            return f"{m.group('base')}-<c{self.seqs.setdefault(s, str(len(self.seqs)))}>"

        return _CHAN_SEQ.sub(seq, v)


@dataclass
class NormEvent:
    t: float
    key: tuple[tuple[str, str], ...]
    fuzzy: dict[str, int] = field(default_factory=dict)
    raw: Pairs = field(default_factory=list)

    @property
    def name(self) -> str:
        d = dict(self.key)
        return d.get("Event") or f"Response:{d.get('Response')}"


def normalise(
    frames: list[tuple[float, Pairs]], headers: Collection[str] = COMPARED
) -> list[NormEvent]:
    norm = Normaliser()
    out = []
    for t, f in frames:
        key: list[tuple[str, str]] = []
        fuzzy: dict[str, int] = {}
        var = get(f, "Variable")
        for k, v in f:
            if k in headers:
                nv = norm.value(v)
                if k == "Value" and var in FUZZY_MS and v.isdigit():
                    fuzzy[var] = int(v)
                    nv = "<ms>"
                key.append((k, nv))
            elif k in ("BridgeUniqueid",):
                norm.value(v)
        out.append(NormEvent(t, tuple(key), fuzzy, f))
    return out


@dataclass
class Comparison:
    problems: list[str]
    pairs: int

    @property
    def ok(self) -> bool:
        return not self.problems


def compare(
    recorded: list[tuple[float, Pairs]],
    simulated: list[tuple[float, Pairs]],
    time_tol: float = 0.1,
    race_window: float = 0.02,
    ms_tol: int = 150,
    headers: Collection[str] = COMPARED,
    unordered: Collection[str] = (),
) -> Comparison:
    """Same frames (compared `headers`, ids normalised), each within `time_tol` of the recording,
    in the recorded order except among frames Asterisk emitted within `race_window` of each other
    (its own threads race there: two recordings of one flow differ in that order) and for the
    `unordered` events (driven by device state, their place varies between runs)."""
    rec, sim = normalise(recorded, headers), normalise(simulated, headers)
    problems: list[str] = []
    by_key: dict[tuple[tuple[str, str], ...], list[int]] = defaultdict(list)
    for i, e in enumerate(sim):
        by_key[e.key].append(i)
    used: dict[tuple[tuple[str, str], ...], int] = defaultdict(int)
    pairs: list[tuple[int, int]] = []
    for i, e in enumerate(rec):
        idxs = by_key.get(e.key, [])
        k = used[e.key]
        if k >= len(idxs):
            problems.append(f"missing @{e.t:.3f}: {dict(e.key)}")
            continue
        used[e.key] += 1
        pairs.append((i, idxs[k]))
    for key, idxs in by_key.items():
        for j in idxs[used[key] :]:
            problems.append(f"extra @{sim[j].t:.3f}: {dict(sim[j].key)}")
    for i, j in pairs:
        r, s = rec[i], sim[j]
        if abs(r.t - s.t) > time_tol:
            problems.append(f"time {r.name} rec {r.t:.3f} sim {s.t:.3f}: {dict(r.key)}")
        for name, value in r.fuzzy.items():
            got = s.fuzzy.get(name)
            if got is None or abs(got - value) > ms_tol:
                problems.append(f"{name} rec {value} sim {got}")
    # order: a recorded frame clearly later than another must be later in the simulation too
    pairs = [(i, j) for i, j in pairs if rec[i].name not in unordered]
    pairs.sort()
    max_before = -1
    lo = 0
    for i, j in pairs:
        while lo < len(pairs) and rec[pairs[lo][0]].t < rec[i].t - race_window:
            max_before = max(max_before, pairs[lo][1])
            lo += 1
        if j < max_before:
            problems.append(f"order {rec[i].name} @{rec[i].t:.3f}: {dict(rec[i].key)}")
    return Comparison(problems, len(pairs))


def list_blocks(frames: list[tuple[float, Pairs]]) -> list[tuple[float, Pairs]]:
    """Event-list items are sorted within their list: Asterisk walks a hash container there."""
    out: list[tuple[float, Pairs]] = []
    block: list[tuple[float, Pairs]] = []
    in_list = False
    for t, f in frames:
        if get(f, "EventList") == "start":
            out.append((t, f))
            in_list = True
            block = []
            continue
        if in_list and get(f, "EventList") == "Complete":
            block.sort(
                key=lambda tf: (
                    get(tf[1], "Event") or "",
                    get(tf[1], "Channel") or "",
                    get(tf[1], "Queue") or "",
                    get(tf[1], "Name") or "",
                )
            )
            base = block[0][0] if block else t
            out.extend((base, f2) for _, f2 in block)
            out.append((t, f))
            in_list = False
            continue
        if in_list and get(f, "Event") in (
            "CoreShowChannel",
            "QueueParams",
            "QueueMember",
            "QueueEntry",
            "QueueSummary",
            "DBGetResponse",
        ):
            block.append((t, f))
            continue
        out.append((t, f))
    return out


# ---------------------------------------------------------------- interactive FastAGI server


class AgiConn:
    """One FastAGI connection as a test IVR sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.env: dict[str, str] = {}
        self.received: list[str] = []

    async def read_env(self) -> None:
        while True:
            line = (await self.reader.readline()).decode()
            if line in ("\n", ""):
                return
            key, _, value = line.rstrip("\n").partition(": ")
            self.env[key] = value

    async def read_line(self) -> str:
        line = (await self.reader.readline()).decode()
        self.received.append(line)
        return line.rstrip("\n")

    async def command(self, line: str) -> str:
        """Send one command, return the next line Asterisk sends (may be the `HANGUP` notice)."""
        self.writer.write((line + "\n").encode())
        await self.writer.drain()
        return await self.read_line()


class IvrServer:
    """A FastAGI server that runs `handler(conn)` for each call (default: the lab's IVR)."""

    def __init__(self, handler: Callable[[AgiConn], object] | None = None) -> None:
        self.handler = handler or lab_ivr
        self.conns: list[AgiConn] = []
        self.finished = 0
        self.port = 0
        self.one_finished = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> IvrServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = AgiConn(reader, writer)
        self.conns.append(conn)
        try:
            await conn.read_env()
            result = self.handler(conn)
            if asyncio.iscoroutine(result):
                await result
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
            self.finished += 1
            self.one_finished.set()


async def lab_ivr(conn: AgiConn) -> None:
    """What the lab's FastAGI server did: one digit, 1 → ordinary, 2 → expert."""
    reply = await conn.command("WAIT FOR DIGIT 6000")
    m = re.match(r"200 result=(-?\d+)", reply)
    code = int(m.group(1)) if m else -1
    digit = chr(code) if code > 0 else ""
    queue = "expert" if digit == "2" else "ordinary"
    await conn.command(f'SET VARIABLE CTID_QUEUE "{queue}"')
    await conn.command(f'SET VARIABLE CTID_IVR "{digit}"')
