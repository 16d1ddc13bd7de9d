"""Which live call a caller's channel belongs to, kept from the call story's notices (the keypad
survey and the IVR's status query ask it; nothing reads the tracker back)."""

from __future__ import annotations

from typing import TypeAlias, assert_never

from ctid.core.calls import CallAnswered, CallEnded, CallStarted, SeatsResynced
from ctid.core.ids import CallId, Channel

ChannelItems: TypeAlias = CallStarted | CallAnswered | CallEnded | SeatsResynced
"""What the map reads from the bus (subscribe `on_item` to these)."""


class CallChannels:
    """Caller channel → call, from `CallStarted` and `CallAnswered` (which name the caller's
    channel as the tracker knows it then) until `CallEnded`. A resync's notices repair it, and
    its `SeatsResynced` drops the calls that are no longer live."""

    def __init__(self) -> None:
        self._call_of: dict[Channel, CallId] = {}
        self._channels: dict[CallId, set[Channel]] = {}

    def __len__(self) -> int:
        return len(self._call_of)

    def call_of_channel(self, channel: Channel) -> CallId | None:
        return self._call_of.get(channel)

    def on_item(self, item: ChannelItems) -> None:
        match item:
            case CallStarted() | CallAnswered():
                if item.caller_channel:
                    self._add(item.call_id, item.caller_channel)
            case CallEnded():
                self._drop(item.record.call_id)
            case SeatsResynced():
                live = set(item.calls)
                for gone in [cid for cid in self._channels if cid not in live]:
                    self._drop(gone)
            case _:
                assert_never(item)

    def _add(self, call_id: CallId, channel: Channel) -> None:
        old = self._call_of.get(channel)
        if old == call_id:
            return
        if old is not None:
            self._channels[old].discard(channel)
        self._call_of[channel] = call_id
        self._channels.setdefault(call_id, set()).add(channel)

    def _drop(self, call_id: CallId) -> None:
        for channel in self._channels.pop(call_id, ()):
            if self._call_of.get(channel) == call_id:
                del self._call_of[channel]
