"""Shared by the benchmarks: the recorded Asterisk event mix, replayed as many distinct calls, and
a loopback server (in its own process) that writes it to whoever connects."""

from __future__ import annotations

import json
import multiprocessing
import re
import socket
from pathlib import Path

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ami-transcripts"
MIXES = {"recorded": TRANSCRIPTS, "pjsip": TRANSCRIPTS / "pjsip"}
"""The event mixes: the first recordings (Local phones, every event class, unfiltered) and the
PJSIP ones (SIP phones, the contrib manager user's classes and filters: mostly events ctid handles)."""
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
_IDS = re.compile(r"(\d{10})\.(\d+)")
_CHAN = re.compile(r"-([0-9a-f]{8})(;[12])?")


COMPLETE_CALLS = ("answered", "abandon", "call_cap", "hangup_in_ivr", "chanspy")
"""Recordings in which every call also ends (the others stop while a caller still waits)."""


def recorded_events(names: tuple[str, ...] | None = None, mix: str = "recorded") -> list[str]:
    """Every event frame Asterisk sent in the `mix` recordings (or the `names` ones), unfiltered,
    in recorded order."""
    frames: list[str] = []
    paths = sorted(MIXES[mix].glob("*.jsonl"))
    if names is not None:
        paths = [p for p in paths if p.stem in names]
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec["dir"] == "in" and rec["raw"].startswith("Event: "):
                frames.append(rec["raw"])
    return frames


def _shift_ids(raw: str, shift: int) -> str:
    def uid(m: re.Match[str]) -> str:
        return f"{m.group(1)}.{int(m.group(2)) + shift}"

    def chan(m: re.Match[str]) -> str:
        return f"-{int(m.group(1), 16) + shift:08x}{m.group(2) or ''}"

    return _CHAN.sub(chan, _IDS.sub(uid, raw))


def event_stream(target_events: int, mix: str = "recorded") -> tuple[bytes, int]:
    """The `mix` repeated until `target_events`, each repetition with its own Uniqueids,
    Linkedids and channel numbers (so the tracker sees new calls, not replays)."""
    base = recorded_events(mix=mix)
    parts = [BANNER]
    count = 0
    rep = 0
    while count < target_events:
        shift = rep * 100_000
        for raw in base:
            text = _shift_ids(raw, shift)
            parts.append(text.encode("utf-8"))
            count += 1
            if count >= target_events:
                break
        rep += 1
    return b"".join(parts), count


def _serve(sock: socket.socket, payload: bytes, connections: int) -> None:
    for _ in range(connections):
        conn, _addr = sock.accept()
        with conn:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
            # Wait for the client to close, so it reads everything.
            while conn.recv(65536):
                pass


def start_server(
    payload: bytes, connections: int
) -> tuple[int, multiprocessing.process.BaseProcess]:
    """Serve `payload` to `connections` clients in turn from a child process; returns the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = int(sock.getsockname()[1])
    proc = multiprocessing.get_context("fork").Process(
        target=_serve, args=(sock, payload, connections), daemon=True
    )
    proc.start()
    sock.close()
    return port, proc
