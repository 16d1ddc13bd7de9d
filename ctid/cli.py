"""Command line: argv → config → logging → the chosen command; owns ctid's exit codes.

Exit codes: 0 ok · 1 a check found problems · 2 usage error · 3 database not migrated ·
69 a service ctid needs is unavailable (database, port) · 70 internal error · 78 bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from ctid import __version__
from ctid.config import Config, load_config
from ctid.core.errors import ConfigError, CtidError, NotMigratedError, StoreError
from ctid.log import LEVELS, configure_logging

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_MIGRATED = 3
EXIT_UNAVAILABLE = 69
EXIT_INTERNAL = 70
EXIT_CONFIG = 78

DEFAULT_CONFIG = "ctid.toml"

Handler = Callable[[argparse.Namespace], int]


def _config_path(args: argparse.Namespace) -> str:
    path: str | None = getattr(args, "config", None)
    return path or os.environ.get("CTID_CONFIG") or DEFAULT_CONFIG


def _load(args: argparse.Namespace) -> Config:
    return load_config(_config_path(args))


# --------------------------------------------------------------------------- commands


def cmd_version(_args: argparse.Namespace) -> int:
    print(f"ctid {__version__}")
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = load_config(args.path)
    tiers = ", ".join(
        f"{tier}: {sum(1 for s in cfg.seats if s.tier == tier)}" for tier in ("ordinary", "expert")
    )
    print(f"{args.path}: ok")
    print(f"  site        {cfg.site.name} ({cfg.site.timezone})")
    print(f"  seats       {len(cfg.seats)} ({tiers})")
    print(f"  queues      {', '.join(q.name for q in cfg.queues)}")
    print(f"  supervisors {len(cfg.supervisors)}")
    days = ",".join(cfg.hours.days)
    print(f"  hours       {days} {cfg.hours.open:%H:%M}-{cfg.hours.close:%H:%M}")
    if cfg.lunch.enabled and cfg.lunch.groups:
        groups = "; ".join(f"{g.name}: {' '.join(g.seats)}" for g in cfg.lunch.groups)
        print(f"  lunch       {cfg.lunch.start:%H:%M}-{cfg.lunch.end:%H:%M} groups {groups}")
    print(
        f"  ring rule   {cfg.ring.max_rings} rings x {cfg.ring.ring_cadence_s:g} s "
        f"= {cfg.ring.deadline_s:g} s; talk cap {cfg.talk_cap.talk_cap_s} s ({cfg.talk_cap.action})"
    )
    print(f"  ami         {cfg.ami.username}@{cfg.ami.host}:{cfg.ami.port}")
    print(f"  database    {_redact_url(cfg.database_url)}")
    return EXIT_OK


def _redact_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


async def _upgrade(cfg: Config) -> list[str]:
    from ctid.db import create_engine, upgrade

    engine = create_engine(
        cfg.database_url, sqlite_busy_timeout_ms=cfg.database.sqlite_busy_timeout_ms
    )
    try:
        return await upgrade(engine)
    finally:
        await engine.dispose()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    cfg = _load(args)
    applied = asyncio.run(_upgrade(cfg))
    if applied:
        print(f"database migrated: applied {', '.join(applied)}")
    else:
        print("database already up to date")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from ctid.asterisk.doctor import run_doctor

    cfg = _load(args)
    findings = run_doctor(Path(args.asterisk_dir), cfg)
    for finding in findings:
        print(finding)
    if findings:
        print(f"{len(findings)} problem(s) in {args.asterisk_dir}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    print(f"{args.asterisk_dir}: consistent with ctid's config")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from ctid.app import run

    cfg = _load(args)
    asyncio.run(run(cfg, _config_path(args)))
    return EXIT_OK


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctid",
        description="CTI daemon for an Asterisk IT service desk.",
        epilog="exit codes: 0 ok, 1 check found problems, 2 usage, 3 database not migrated, "
        "69 service unavailable, 70 internal error, 78 bad configuration",
    )
    parser.add_argument("--log-level", choices=LEVELS, default="info")
    parser.add_argument(
        "--log-format",
        choices=("auto", "console", "json"),
        default="auto",
        help="console on a terminal and JSON lines otherwise (auto)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, handler: Handler, help_: str, *, config: bool = True
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        if config:
            p.add_argument(
                "-c",
                "--config",
                metavar="PATH",
                help=f"config file (default: $CTID_CONFIG or ./{DEFAULT_CONFIG})",
            )
        p.set_defaults(handler=handler)
        return p

    add("run", cmd_run, "run the daemon (AMI, FastAGI, web) until SIGTERM/SIGINT")
    p = add("check-config", cmd_check_config, "validate a config file", config=False)
    p.add_argument("path", metavar="PATH")
    add("version", cmd_version, "print the version", config=False)
    p = add(
        "doctor",
        cmd_doctor,
        "check the PBX's manager.conf, queues.conf and extensions.conf against ctid's config",
    )
    p.add_argument(
        "--asterisk-dir", metavar="DIR", default="/etc/asterisk", help="default: /etc/asterisk"
    )

    db = sub.add_parser("db", help="database maintenance", description="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    up = db_sub.add_parser(
        "upgrade", help="apply pending migrations", description="apply pending migrations"
    )
    up.add_argument("-c", "--config", metavar="PATH")
    up.set_defaults(handler=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return EXIT_CONFIG
    except NotMigratedError as exc:
        print(f"ctid: {exc}", file=sys.stderr)
        return EXIT_NOT_MIGRATED
    except StoreError as exc:
        print(f"ctid: database unavailable: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except CtidError as exc:
        print(f"ctid: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except OSError as exc:
        print(
            f"ctid: {exc.strerror or exc} ({getattr(exc, 'filename', '') or ''})", file=sys.stderr
        )
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception:  # the one unit of work here is the whole command
        structlog.get_logger(__name__).exception("ctid_internal_error", command=args.command)
        return EXIT_INTERNAL


def entry() -> None:  # pragma: no cover - console script shim
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
