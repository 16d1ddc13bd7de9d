"""The simulator's `queue_log`: app_queue's reporting lines in Asterisk's file format and order,
`epoch|callid|queue|agent|event|data…`, kept in memory and appended to a file when configured.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


class QueueLog:
    """Where app_queue's `ast_queue_log` calls land. `lines` holds every line written since the
    simulator started (across restarts), without the newline; `path` is appended to as well."""

    def __init__(self, path: Path | None, epoch: Callable[[], int]) -> None:
        self.path = path
        self._epoch = epoch
        self.lines: list[str] = []

    def write(self, queue: str, callid: str, agent: str, event: str, *data: object) -> None:
        """One line; `data` fields are joined with `|` (no data still ends the line with `|`)."""
        line = "|".join(
            (str(self._epoch()), callid, queue, agent, event, "|".join(str(d) for d in data))
        )
        self.lines.append(line)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")

    def queue_start(self) -> None:
        """Asterisk's logger writes this when it (re)starts with queue_log enabled."""
        self.write("NONE", "NONE", "NONE", "QUEUESTART", "")
