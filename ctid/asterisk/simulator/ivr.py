"""The caller's keypad and prompts inside the dialplan: DTMF delivery, the scripted caller's presses,
and what AGI's input commands (STREAM FILE, WAIT FOR DIGIT, GET DATA, EXEC) do on a channel.
"""

from __future__ import annotations

import asyncio
import math

from ctid.asterisk.simulator.core import PbxCore
from ctid.asterisk.simulator.model import Chan, HotlineCall, float_or_none

DTMF_GAP_S = 0.2
"""SendDTMF delivers a digit ~200 ms after it starts (recordings: 2.0111 → 2.2116)."""


class IvrInput:
    """Digits and prompts on a caller's dialplan channel."""

    def __init__(self, pbx: PbxCore) -> None:
        self.pbx = pbx

    def deliver_dtmf(self, chan: Chan, digit: str) -> None:
        """A DTMF digit arrives on `chan`; it is lost unless a command is reading (as in AGI)."""
        if not chan.alive or chan.dead:
            return
        waiter = chan.dtmf_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(digit)

    def _script_press(self, call: HotlineCall, chan: Chan, kind: str, escape: str) -> None:
        script = call.plan.script
        if call.plan.mode != "sim" or script is None:
            return
        consumed, entry = script.take(kind, escape)
        if not consumed or not entry:
            return
        one = call.one
        for i, digit in enumerate(entry):
            self.pbx.later(
                self.pbx.cfg.press_delay_s + i * DTMF_GAP_S, self._press, call, chan, one, digit
            )

    def _press(self, call: HotlineCall, chan: Chan, one: Chan | None, digit: str) -> None:
        if call.ended or not chan.alive:
            return
        if one is not None and one.alive:
            self.pbx.newexten(one, "SendDTMF", digit, one.priority + 1)
        self.deliver_dtmf(chan, digit)

    async def _next_digit(self, chan: Chan, timeout_s: float | None) -> str | None:
        """Next digit: '' on timeout, None when the channel hung up."""
        if chan.dead or not chan.alive:
            return None
        fut: asyncio.Future[str] = self.pbx.loop.create_future()
        chan.dtmf_waiter = fut
        try:
            if timeout_s is None:
                return await fut or (None if chan.dead else "")
            try:
                got = await asyncio.wait_for(asyncio.shield(fut), timeout_s)
            except TimeoutError:
                # A digit that arrived in the same instant as the timeout is not lost: Asterisk
                # queues the DTMF frame on the channel for the next read.
                return fut.result() if fut.done() and not fut.cancelled() else ""
            if not got and (chan.dead or not chan.alive):
                return None
            return got
        finally:
            chan.dtmf_waiter = None

    async def read_digit(
        self, call: HotlineCall, chan: Chan, kind: str, escape: str, timeout_ms: int
    ) -> str | None:
        """WAIT FOR DIGIT: the digit, '' on timeout, None on hangup."""
        self._script_press(call, chan, kind, escape or "0123456789*#")
        timeout = None if timeout_ms < 0 else timeout_ms / 1000
        while True:
            got = await self._next_digit(chan, timeout)
            if got is None or got == "" or got in (escape or "0123456789*#"):
                return got

    async def play_prompt(
        self,
        call: HotlineCall,
        chan: Chan,
        escape: str,
        from_script: bool = True,
        length_s: float | None = None,
    ) -> tuple[str | None, int]:
        """STREAM FILE: ('', samples) when played out, (digit, samples) when interrupted,
        (None, 0) on hangup."""
        if escape and from_script:
            self._script_press(call, chan, "stream", escape)
        start = self.pbx.now()
        length = self.pbx.cfg.prompt_s if length_s is None else length_s
        while True:
            left = length - (self.pbx.now() - start)
            if left <= 0:
                return "", int(length * 8000)
            got = await self._next_digit(chan, left)
            if got is None:
                return None, 0
            if got and got in escape:
                # the stream has queued every 20 ms frame it started: whole 160-sample frames
                # (pjsip_answered: interrupted after 1.144 s, endpos=9280)
                return got, math.ceil((self.pbx.now() - start) / 0.02) * 160
            if got == "":
                return "", int(length * 8000)

    async def read_data(
        self,
        call: HotlineCall,
        chan: Chan,
        timeout_ms: int,
        max_digits: int,
        prompt_s: float | None = None,
    ) -> tuple[str | None, bool]:
        """GET DATA: (digits, timed_out); (None, False) on hangup."""
        self._script_press(call, chan, "data", "0123456789*#")
        digits = ""
        # the caller's whole entry was already scheduled above; the prompt just listens
        first, _ = await self.play_prompt(
            call, chan, "0123456789*#", from_script=False, length_s=prompt_s
        )
        if first is None:
            return None, False
        if first:
            if first == "#":
                return digits, False
            digits += first
        while len(digits) < max_digits:
            got = await self._next_digit(chan, timeout_ms / 1000)
            if got is None:
                return None, False
            if got == "":
                return digits, True
            if got == "#":
                return digits, False
            digits += got
        return digits, False

    async def agi_exec(self, call: HotlineCall, chan: Chan, app: str, data: str) -> int:
        low = app.lower()
        if low == "set":
            name, _, value = data.partition("=")
            self.pbx.set_var(chan, name.strip(), value)
            return 0
        if low in ("playback", "background"):
            if chan.dead:
                return -1
            got, _ = await self.play_prompt(call, chan, "")
            return -1 if got is None else 0
        if low == "wait":
            await asyncio.sleep(float_or_none(data) or 0.0)
            return -1 if chan.dead else 0
        if low == "hangup":
            self.agi_hangup(call, chan)
            return -1
        if low in ("noop", "verbose", "log", "answer", "progress", "ringing", "userevent"):
            return 0
        return -2

    def agi_hangup(self, call: HotlineCall, chan: Chan) -> None:
        """The IVR hung the caller up (AGI HANGUP)."""
        if chan.dead or not chan.alive:
            return
        self.pbx.soft_hangup_request(chan, 16)
        chan.soft_hangup_sent = True
        chan.dead = True
        chan.hangup_cause = 16
        if call.public.outcome is None:
            call.public.outcome = "routed_hangup"

    def deliver_dtmf_hangup(self, chan: Chan) -> None:
        waiter = chan.dtmf_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result("")
