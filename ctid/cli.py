"""Command line: argv → config → logging → the chosen command; owns ctid's exit codes (listed
below). Global options (-c, --log-level, --log-format) go before or after any subcommand."""

# Exit codes: 0 ok · 1 a check found problems · 2 usage error · 3 database not migrated · 65 a file
# is not what it should be · 66 an input file is missing or unreadable · 69 a service or tool ctid
# needs is unavailable (database, port, pg_dump) · 70 internal error · 73 will not overwrite (backup
# file exists, restore target not empty) · 74 backup/restore failed · 78 bad configuration. Global
# options (-c, --log-level, --log-format) go before or after any subcommand.

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from ctid import __version__
from ctid.config import Config, load_config
from ctid.core.errors import ConfigError, CtidError, NotMigratedError, StoreError
from ctid.log import LEVELS, configure_logging

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_MIGRATED = 3
EXIT_DATA = 65
EXIT_NO_INPUT = 66
EXIT_UNAVAILABLE = 69
EXIT_INTERNAL = 70
EXIT_CANT_CREATE = 73
EXIT_IO = 74
EXIT_CONFIG = 78

EXIT_CODES = (
    "exit codes: 0 ok, 1 check found problems, 2 usage, 3 database not migrated, "
    "65 bad input file, 66 input file missing, 69 service or tool unavailable, "
    "70 internal error, 73 will not overwrite, 74 backup/restore failed, 78 bad configuration"
)
_EMAIL = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+\.[^@\s,;<>\"'.]+$")


class UsageError(CtidError):
    """The command line is incomplete or contradictory (exit 2, one line)."""


class NoInputError(CtidError):
    """An input file named on the command line is missing or unreadable (exit 66)."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (argparse prints the whole usage block)."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _email(value: str) -> str:
    if len(value) > 254 or not _EMAIL.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an e-mail address")
    return value


def _input_file(path: str) -> Path:
    """An input file that exists and can be read, or `NoInputError` naming it."""
    p = Path(path)
    if not p.exists():
        raise NoInputError(f"{path}: does not exist")
    if not p.is_file() or not os.access(p, os.R_OK):
        raise NoInputError(f"{path}: cannot be read")
    return p


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
    path = args.path or _config_path(args)
    cfg = load_config(path, deployment=True)
    tiers = ", ".join(
        f"{tier}: {sum(1 for s in cfg.seats if s.tier == tier)}" for tier in ("ordinary", "expert")
    )
    print(f"{path}: ok")
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
    sounds = Path(args.sounds_dir) if args.sounds_dir else None
    report = run_doctor(Path(args.asterisk_dir), cfg, sounds_dir=sounds)
    for warning in report.warnings:
        print(f"warning: {warning}")
    for finding in report.findings:
        print(finding)
    checked = args.asterisk_dir + (f" and {args.sounds_dir}" if sounds else "")
    if report.findings:
        print(f"{len(report.findings)} problem(s) in {checked}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    print(f"{checked}: consistent with ctid's config")
    return EXIT_OK


def cmd_prompts_install(args: argparse.Namespace) -> int:
    from ctid.prompts import install_prompts

    cfg = _load(args)
    written = install_prompts(cfg, Path(args.dest), args.language)
    print(f"{len(written)} {args.language} prompts installed under {args.dest}")
    return EXIT_OK


async def _with_sessions(cfg: Config, work: Callable[[Any], Awaitable[int]]) -> int:
    """Run `work(sessions)` against the configured, migrated database."""
    from ctid.db import check_schema, create_engine
    from ctid.db.engine import session_factory

    engine = create_engine(
        cfg.database_url, sqlite_busy_timeout_ms=cfg.database.sqlite_busy_timeout_ms
    )
    try:
        await check_schema(engine)
        return await work(session_factory(engine))
    finally:
        await engine.dispose()


def _read_password(args: argparse.Namespace) -> str:
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "no terminal to ask for the password on: pipe it in with --password-stdin "
            "(or add the user with --no-password)"
        )
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise CtidError("the two passwords differ")
    return first


def cmd_users_add(args: argparse.Namespace) -> int:
    from ctid.accounts.users import UserError, add_user

    cfg = _load(args)
    password = None if args.no_password else _read_password(args)

    async def work(sessions: Any) -> int:
        try:
            user = await add_user(
                sessions, args.employee_id, args.name, args.role, password, email=args.email
            )
        except UserError as exc:
            print(f"ctid users add: {exc}", file=sys.stderr)
            return EXIT_CHECK_FAILED
        print(f"user {user.employee_id} ({user.role}) added")
        return EXIT_OK

    return asyncio.run(_with_sessions(cfg, work))


def cmd_users_passwd(args: argparse.Namespace) -> int:
    from ctid.accounts.users import UserError, set_password

    cfg = _load(args)
    password = _read_password(args)

    async def work(sessions: Any) -> int:
        try:
            await set_password(sessions, args.employee_id, password)
        except UserError as exc:
            print(f"ctid users passwd: {exc}", file=sys.stderr)
            return EXIT_CHECK_FAILED
        print(f"password of {args.employee_id} changed (its sessions were ended)")
        return EXIT_OK

    return asyncio.run(_with_sessions(cfg, work))


def cmd_users_list(args: argparse.Namespace) -> int:
    from ctid.accounts.admin import list_users
    from ctid.reports.render import text_table

    cfg = _load(args)

    async def work(sessions: Any) -> int:
        users = await list_users(sessions)
        if not users:
            print("no users yet (add one with `ctid users add`)")
            return EXIT_OK
        rows = [
            [
                u.employee_id,
                u.name,
                u.role,
                u.email or "-",
                "yes" if u.active else "DISABLED",
                "yes" if u.can_log_in else "no",
            ]
            for u in users
        ]
        header = ["employee ID", "name", "role", "e-mail", "active", "can log in"]
        sys.stdout.write(text_table(header, rows, left=4))
        return EXIT_OK

    return asyncio.run(_with_sessions(cfg, work))


def _cmd_users_active(args: argparse.Namespace, active: bool) -> int:
    from ctid.accounts.admin import set_active
    from ctid.accounts.users import UserError

    cfg = _load(args)
    verb = "enabled" if active else "disabled"

    async def work(sessions: Any) -> int:
        try:
            changed = await set_active(sessions, args.employee_id, active)
        except UserError as exc:
            print(f"ctid users {args.users_command}: {exc}", file=sys.stderr)
            return EXIT_CHECK_FAILED
        extra = " (its sessions were ended)" if changed and not active else ""
        print(f"user {args.employee_id} {verb if changed else 'was already ' + verb}{extra}")
        return EXIT_OK

    return asyncio.run(_with_sessions(cfg, work))


def cmd_users_disable(args: argparse.Namespace) -> int:
    return _cmd_users_active(args, False)


def cmd_users_enable(args: argparse.Namespace) -> int:
    return _cmd_users_active(args, True)


def cmd_callers_import(args: argparse.Namespace) -> int:
    from ctid.core.clock import SystemClock
    from ctid.tickets.directory import CallerDirectory

    data = _input_file(args.file).read_bytes()
    cfg = _load(args)

    async def work(sessions: Any) -> int:
        directory = CallerDirectory(sessions, SystemClock(cfg.site.timezone), cfg)
        report = await directory.import_csv(data, actor="cli")
        print(
            f"{args.file}: {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {len(report.rejected)} rejected"
        )
        for problem in report.rejected:
            print(f"{args.file}:{problem.line}: rejected: {problem.reason}", file=sys.stderr)
        for problem in report.warnings:
            print(f"{args.file}:{problem.line}: warning: {problem.reason}", file=sys.stderr)
        return EXIT_CHECK_FAILED if report.rejected else EXIT_OK

    return asyncio.run(_with_sessions(cfg, work))


def cmd_reconcile(args: argparse.Namespace) -> int:
    import hashlib
    import hmac

    from ctid.app.secrets import site_secret
    from ctid.core.clock import SystemClock
    from ctid.tickets.queue_log_follow import run_reconcile, since_day
    from ctid.tickets.reconcile import ReconcileReport
    from ctid.tickets.writes import CallWriter

    cfg = _load(args)
    path = args.queue_log or cfg.asterisk.queue_log
    if not path:
        print("ctid reconcile: no queue_log (give --queue-log FILE)", file=sys.stderr)
        return EXIT_USAGE
    try:
        since = since_day(args.since, cfg) if args.since else None
    except ValueError:
        print(f"ctid reconcile: --since {args.since!r} is not YYYY-MM-DD", file=sys.stderr)
        return EXIT_USAGE
    report = ReconcileReport()

    async def work(sessions: Any) -> int:
        clock = SystemClock(cfg.site.timezone)
        secret = hmac.new(site_secret(cfg), b"ctid-tickets-links", hashlib.sha256).digest()
        store = CallWriter.build(sessions, clock, cfg, link_secret=secret)
        report.merge(await run_reconcile(cfg, sessions, clock, store, path, since))
        return EXIT_OK

    asyncio.run(_with_sessions(cfg, work))
    for call_id in report.added:
        print(f"added {call_id}")
    for call_id in report.completed:
        print(f"completed {call_id}")
    print(
        f"{path}: {len(report.added)} added, {len(report.completed)} completed, "
        f"{len(report.incidents)} incidents, {len(report.callbacks)} callbacks, "
        f"{report.matched} already recorded, {report.already} already reconciled"
        + (f", {report.failed} failed" if report.failed else "")
    )
    return EXIT_CHECK_FAILED if report.failed else EXIT_OK


def cmd_roster(args: argparse.Namespace) -> int:
    from ctid.rotation.commands import run_roster

    if getattr(args, "file", None) is not None:
        _input_file(args.file)
    cfg = _load(args)
    text, code = asyncio.run(run_roster(cfg, args))
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


def cmd_report(args: argparse.Namespace) -> int:
    from ctid.reports import ReportError, agent_month_command, report_command

    if not args.agent_month and not (args.from_ and args.to):
        raise UsageError("give --from and --to (YYYY-MM-DD), or --agent-month YYYY-MM")
    cfg = _load(args)
    try:
        return _report(cfg, args, agent_month_command, report_command)
    except ReportError as exc:
        print(f"ctid report: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _report(cfg: Config, args: argparse.Namespace, agent_month: Any, report: Any) -> int:
    agent_month_command, report_command = agent_month, report
    if getattr(args, "seat_time", False):
        from ctid.core.clock import SystemClock
        from ctid.reports import seat_time_command

        now = SystemClock(cfg.site.timezone).utcnow()
        text = asyncio.run(seat_time_command(cfg, args.from_, args.to, now, args.csv))
    elif args.agent_month:
        text = asyncio.run(agent_month_command(cfg, args.agent_month, args.csv))
    else:
        text = asyncio.run(report_command(cfg, args.from_, args.to, args.by, args.csv))
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


def cmd_db_backup(args: argparse.Namespace) -> int:
    from ctid.db.backup import backup

    cfg = _load(args)
    print(asyncio.run(backup(cfg.database_url, Path(args.to))))
    return EXIT_OK


def cmd_db_restore(args: argparse.Namespace) -> int:
    from ctid.db.backup import restore

    source = _input_file(args.file)
    cfg = _load(args)
    print(asyncio.run(restore(cfg.database_url, source)))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from ctid.app.demo import DemoOptions, run_demo

    options = DemoOptions(
        web_port=args.port,
        seed=args.seed,
        keep=args.keep,
        smoke=args.smoke,
        verbose=args.verbose,
        write_config=Path(args.write_config) if args.write_config else None,
        log_level=args.log_level,
    )
    return asyncio.run(run_demo(options))


def _started() -> None:
    """`ctid run` serves: what start-up built lives on, out of the GC's sight (see `main`)."""
    gc.freeze()
    gc.enable()


def cmd_run(args: argparse.Namespace) -> int:
    from ctid.app import run

    cfg = load_config(_config_path(args), deployment=True)
    on_serving = _started if getattr(args, "resume_gc", False) else None
    asyncio.run(run(cfg, _config_path(args), on_serving=on_serving))
    return EXIT_OK


# --------------------------------------------------------------------------- parser


def _add_globals(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """-c/--log-level/--log-format on `parser` and, recursively, on every subcommand under it,
    so they work before or after any subcommand. Below the top they default to SUPPRESS, so an
    option given early is not reset by the subcommand's parser."""
    have = parser._option_string_actions
    default: Any = None if top else argparse.SUPPRESS
    if "-c" not in have:
        parser.add_argument(
            "-c",
            "--config",
            metavar="PATH",
            default=default,
            help=f"config file (default: $CTID_CONFIG or ./{DEFAULT_CONFIG})",
        )
    if "--log-level" not in have:
        parser.add_argument(
            "--log-level", choices=LEVELS, default="info" if top else argparse.SUPPRESS
        )
    if "--log-format" not in have:
        parser.add_argument(
            "--log-format",
            choices=("auto", "console", "json"),
            default="auto" if top else argparse.SUPPRESS,
            help="console on a terminal and JSON lines otherwise (auto)",
        )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_globals(child)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ctid", description="CTI daemon for an Asterisk IT service desk.", epilog=EXIT_CODES
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    add("run", cmd_run, "run the daemon (AMI, FastAGI, web) until SIGTERM/SIGINT; SIGHUP reloads")
    p = add(
        "demo",
        cmd_demo,
        "the whole desk on this machine: PBX simulator, daemon, mail catcher, demo users and "
        "live traffic",
    )
    p.add_argument("--port", type=int, default=8080, help="web port (default 8080, else any)")
    p.add_argument("--seed", type=int, help="seed the traffic generator (repeatable demo)")
    p.add_argument("--keep", action="store_true", help="keep the demo's data directory")
    p.add_argument("--verbose", action="store_true", help="logs on the terminal (default: a file)")
    p.add_argument(
        "--write-config",
        metavar="FILE",
        help="write the config the demo runs with (point other commands at it with -c FILE); "
        "keeps the data directory",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="a few fast calls, then exit 0 only if a pop, an incident and a report came out",
    )
    p = add("check-config", cmd_check_config, "validate a config file (every problem at once)")
    p.add_argument("path", metavar="PATH", nargs="?", help="default: the -c file")
    add("version", cmd_version, "print the version")
    p = add(
        "doctor",
        cmd_doctor,
        "check the PBX's manager.conf, queues.conf, extensions.conf and pjsip.conf (and the IVR "
        "prompts with --sounds-dir) against ctid's config",
    )
    p.add_argument(
        "--asterisk-dir", metavar="DIR", default="/etc/asterisk", help="default: /etc/asterisk"
    )
    p.add_argument(
        "--sounds-dir",
        metavar="DIR",
        help="also check every configured IVR prompt is under DIR (e.g. /var/lib/asterisk/sounds)",
    )

    prompts = sub.add_parser("prompts", help="the IVR's sound files")
    prompts_sub = prompts.add_subparsers(dest="prompts_command", metavar="COMMAND", required=True)
    p = prompts_sub.add_parser(
        "install",
        help="write the shipped placeholder prompts under DIR with the configured names "
        "(ctid/welcome -> DIR/ctid/welcome.wav)",
    )
    p.add_argument("--dest", metavar="DIR", required=True, help="e.g. /var/lib/asterisk/sounds")
    p.add_argument("--language", choices=("zh", "en"), default="zh", help="default: zh")
    p.add_argument("-c", "--config", metavar="PATH")
    p.set_defaults(handler=cmd_prompts_install)

    users = sub.add_parser("users", help="web users (agents, supervisors, ops)")
    users_sub = users.add_subparsers(dest="users_command", metavar="COMMAND", required=True)
    p = users_sub.add_parser("add", help="add a user (asks for the password twice)")
    p.add_argument("employee_id", metavar="EMPLOYEE_ID")
    p.add_argument("--name", required=True)
    p.add_argument("--role", required=True, choices=("agent", "supervisor", "ops"))
    p.add_argument("--email", type=_email)
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--no-password", action="store_true", help="no login until `users passwd`")
    p.set_defaults(handler=cmd_users_add)
    p = users_sub.add_parser("passwd", help="set a user's password (ends their sessions)")
    p.add_argument("employee_id", metavar="EMPLOYEE_ID")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(handler=cmd_users_passwd)
    p = users_sub.add_parser("list", help="every user, with role, e-mail and whether active")
    p.set_defaults(handler=cmd_users_list)
    p = users_sub.add_parser("disable", help="stop a user logging in (ends their sessions)")
    p.add_argument("employee_id", metavar="EMPLOYEE_ID")
    p.set_defaults(handler=cmd_users_disable)
    p = users_sub.add_parser("enable", help="let a disabled user log in again")
    p.add_argument("employee_id", metavar="EMPLOYEE_ID")
    p.set_defaults(handler=cmd_users_enable)

    callers = sub.add_parser("callers", help="the caller directory")
    callers_sub = callers.add_subparsers(dest="callers_command", metavar="COMMAND", required=True)
    p = callers_sub.add_parser(
        "import",
        help="import callers from CSV (name, employee_id, department, office_location, phones, "
        "vip, email); rejected rows are listed with their line",
    )
    p.add_argument("file", metavar="FILE.csv")
    p.set_defaults(handler=cmd_callers_import)

    from ctid.rotation.commands import add_roster_arguments

    roster = sub.add_parser(
        "roster", help="seats, staff, lunch rotation and holidays", description="the roster"
    )
    add_roster_arguments(roster)
    roster.set_defaults(handler=cmd_roster)

    p = add("report", cmd_report, "KPI report for a date range, or the monthly per-agent review")
    p.add_argument("--from", dest="from_", metavar="YYYY-MM-DD")
    p.add_argument("--to", metavar="YYYY-MM-DD")
    p.add_argument("--by", choices=("total", "seat", "tier", "day", "hour"), default="total")
    p_rec = add(
        "reconcile",
        cmd_reconcile,
        "complete the call records from Asterisk's queue_log (safe to run again)",
    )
    p_rec.add_argument("--queue-log", metavar="FILE", help="default: [asterisk] queue_log")
    p_rec.add_argument("--since", metavar="YYYY-MM-DD", help="only calls from this day on")
    p.add_argument("--agent-month", metavar="YYYY-MM", help="the monthly per-agent review")
    p.add_argument("--seat-time", action="store_true", help="time per seat state per seat per day")
    p.add_argument("--csv", action="store_true", help="CSV instead of a table")

    db = sub.add_parser("db", help="database maintenance", description="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    up = db_sub.add_parser(
        "upgrade", help="apply pending migrations", description="apply pending migrations"
    )
    up.set_defaults(handler=cmd_db_upgrade)
    p = db_sub.add_parser(
        "backup",
        help="a consistent copy while ctid runs (SQLite online backup; PostgreSQL: pg_dump)",
    )
    p.add_argument("--to", required=True, metavar="FILE", help="a new file (never overwritten)")
    p.set_defaults(handler=cmd_db_backup)
    p = db_sub.add_parser("restore", help="load a backup into an empty database")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(handler=cmd_db_restore)
    _add_globals(parser, top=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # No cyclic GC while `ctid run` starts (~10 % of its CPU, for nothing): `_started` resumes it.
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        args = build_parser().parse_args(argv)
        args.resume_gc = gc_was_on and args.handler is cmd_run
        if gc_was_on and not args.resume_gc:
            gc.enable()
        return _dispatch(args)
    finally:
        if gc_was_on:
            gc.enable()


def _dispatch(args: argparse.Namespace) -> int:
    from ctid.db.backup import BackupError, BadBackupError, TargetNotEmptyError, ToolMissingError

    configure_logging(args.log_level, args.log_format)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return EXIT_CONFIG
    except UsageError as exc:
        print(f"ctid {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NoInputError as exc:
        print(f"ctid: {exc}", file=sys.stderr)
        return EXIT_NO_INPUT
    except NotMigratedError as exc:
        print(f"ctid: {exc}", file=sys.stderr)
        return EXIT_NOT_MIGRATED
    except BackupError as exc:
        print(f"ctid db: {exc}", file=sys.stderr)
        if isinstance(exc, ToolMissingError):
            return EXIT_UNAVAILABLE
        if isinstance(exc, TargetNotEmptyError):
            return EXIT_CANT_CREATE
        return EXIT_DATA if isinstance(exc, BadBackupError) else EXIT_IO
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
