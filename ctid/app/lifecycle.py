"""Part of the composition root's startup/shutdown/reload: how `ctid run` lives under a service
manager (READY=1 once database, web, AMI login and first resync are up; watchdog; SIGHUP reload;
STOPPING=1)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from ctid.app.reload import reload_config
from ctid.app.systemd import Notifier
from ctid.i18n import load_catalogs

if TYPE_CHECKING:
    from ctid.app.daemon import Daemon

log = structlog.get_logger(__name__)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def _ready(
    daemon: Daemon, serving: asyncio.Event, on_serving: Callable[[], None] | None
) -> None:
    await serving.wait()
    if on_serving is not None:
        on_serving()
    await daemon.rota_applied.wait()  # set after AMI login and the first resync


async def supervise(
    daemon: Daemon,
    stop: asyncio.Event,
    config_path: str | None,
    notifier: Notifier | None = None,
    on_serving: Callable[[], None] | None = None,
) -> None:
    """Serve `daemon` (already entered) until `stop`, telling systemd how it goes.
    `on_serving` is called once its loops run (database checked, web up), before AMI login."""
    notify = notifier or Notifier()
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[object]] = set()

    def on_hup() -> None:
        if config_path is None:
            log.warning("config_reload_unavailable", reason="started without a config file")
            return
        task: asyncio.Task[object] = loop.create_task(reload_config(daemon, config_path))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    hup = False
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        hup = True
    serving = asyncio.Event()
    ready = asyncio.Event()
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(daemon.serve(stop, serving))
            # From the start: a loop stuck before READY is as dead as one stuck after it.
            dog = tg.create_task(notify.watchdog())
            notify.notify("STATUS=database checked, web up; waiting for AMI login and resync")
            readiness = tg.create_task(_ready(daemon, serving, on_serving))
            readiness.add_done_callback(lambda _t: ready.set())
            await _first(ready, stop)
            if not stop.is_set():
                notify.notify("READY=1", f"STATUS=serving {daemon.web.public_url}")
                # What startup built (modules, config, mappers, caches) lives as long as the
                # process: keep it out of the collector's full passes, which otherwise walk
                # all of it and hold the loop (and the pops) for 100-200 ms at a time.
                gc.freeze()
                log.info("ctid_ready", gc_frozen=gc.get_freeze_count())
                daemon.web.auth.prepare()  # the login decoy hash, in a thread, once ready
                # The same for the catalogs and Babel's locale data; frozen in turn once read
                # (a full collection walks every object not frozen: here ~25 ms for ~24,000).
                loop.run_in_executor(None, _load_catalogs).add_done_callback(_freeze_again)
            await stop.wait()
            readiness.cancel()
            notify.notify("STOPPING=1", "STATUS=stopping")
            dog.cancel()
            for task in list(reloads):
                task.cancel()
    finally:
        if hup:
            loop.remove_signal_handler(signal.SIGHUP)
        notify.close()


def _freeze_again(_done: object) -> None:
    gc.freeze()
    log.info("ctid_languages_loaded", gc_frozen=gc.get_freeze_count())


def _load_catalogs() -> None:
    try:
        load_catalogs()
    except Exception:  # the words then load on first use, as before
        log.exception("catalogs_not_loaded")
