"""Part of the composition root's reload: on SIGHUP re-read the config and re-apply what can change
while calls are up (roster, hours, holidays, IVR) to the parts the root built; other keys need a
restart, and a config that does not load changes nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from ctid.config import Config, load_config
from ctid.core.errors import ConfigError

if TYPE_CHECKING:
    from ctid.app.daemon import Daemon

log = structlog.get_logger(__name__)

RELOADABLE = ("hours", "lunch", "ivr")
"""Config sections swapped in on SIGHUP (the roster itself lives in the database and is re-read)."""


@dataclass
class ReloadReport:
    applied: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def plan_reload(old: Config, new: Config) -> tuple[Config, ReloadReport]:
    """The config to run with after a reload, and what changed: reloadable sections come from
    `new`, everything else stays as `old` (and is reported as needing a restart)."""
    report = ReloadReport()
    update = {}
    for name in Config.model_fields:
        if getattr(old, name) == getattr(new, name):
            continue
        if name in RELOADABLE:
            update[name] = getattr(new, name)
            report.applied.append(name)
        else:
            report.needs_restart.append(name)
    return old.model_copy(update=update), report


async def reload_config(daemon: Daemon, config_path: str) -> ReloadReport:
    """Re-read `config_path`, apply what can be applied to the running daemon, re-read the
    roster and holidays, and log the outcome."""
    try:
        new = await asyncio.to_thread(load_config, config_path, deployment=True)
    except ConfigError as exc:
        for line in exc.problems:
            log.error("config_reload_refused", problem=line)
        return ReloadReport(problems=list(exc.problems))
    merged, report = plan_reload(daemon.cfg, new)
    daemon.cfg = merged
    daemon.screens.cfg = merged
    daemon.roster.use_config(merged)

    async def reread_rota() -> None:
        await daemon.rota.load()
        if daemon.seat_board.known:
            await daemon.rota.apply_now()

    await daemon.rota_work.submit("rota: reload", reread_rota)
    log.info(
        "config_reloaded",
        applied=report.applied or ["roster", "holidays"],
        also_reread=["roster", "holidays"],
    )
    if report.needs_restart:
        log.warning(
            "config_change_needs_restart",
            sections=report.needs_restart,
            hint="restart ctid (systemctl restart ctid) to apply these",
        )
    return report
