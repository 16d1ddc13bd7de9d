"""The composition root: `Daemon` builds every concrete object and owns startup and shutdown;
`run` is what `ctid run` calls."""

from ctid.app.daemon import Daemon, run

__all__ = ["Daemon", "run"]
