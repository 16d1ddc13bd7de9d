"""`ctid db backup` / `ctid db restore` through the real command, both ways, on SQLite and on
PostgreSQL (pg_dump/pg_restore), and what they refuse: overwriting, a non-empty target, a file
that is no backup, a PostgreSQL backup without pg_dump."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _admin

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")


def _config(tmp_path: Path, name: str, url: str | None = None) -> Path:
    path = tmp_path / f"{name}.toml"
    text = EXAMPLE.replace('data_dir = "./var"', f'data_dir = "./{name}-var"')
    assert text != EXAMPLE, "config.example.toml no longer sets data_dir = ./var"
    if url is not None:
        text = text.replace('\nurl = ""', f'\nurl = "{url}"', 1)
        assert url in text
    path.write_text(text, encoding="utf-8")
    return path


def ctid(
    config: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctid.cli", *args, "-c", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _with_a_user(config: Path) -> None:
    up = ctid(config, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    add = ctid(
        config,
        "users",
        "add",
        "E1001",
        "--name",
        "王芳",
        "--role",
        "agent",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert add.returncode == 0, add.stderr


def _roundtrip(tmp_path: Path, source: Path, target: Path, reset: object = None) -> None:
    _with_a_user(source)
    backup = tmp_path / "ctid.backup"
    made = ctid(source, "db", "backup", "--to", str(backup))
    assert made.returncode == 0, made.stderr
    assert backup.stat().st_size > 0

    again = ctid(source, "db", "backup", "--to", str(backup))
    assert again.returncode == 73
    assert "exists already" in again.stderr

    if callable(reset):
        reset()
    restored = ctid(target, "db", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    listed = ctid(target, "users", "list")
    assert listed.returncode == 0, listed.stderr
    assert "E1001" in listed.stdout
    assert "王芳" in listed.stdout

    twice = ctid(target, "db", "restore", str(backup))
    assert twice.returncode == 73
    assert "not empty" in twice.stderr
    assert "Traceback" not in twice.stderr


def test_sqlite_backup_and_restore(tmp_path: Path) -> None:
    _roundtrip(tmp_path, _config(tmp_path, "live"), _config(tmp_path, "restored"))


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello, not a database\n")
    proc = ctid(_config(tmp_path, "x"), "db", "restore", str(junk))
    assert proc.returncode == 65
    assert (
        proc.stderr.strip()
        == f"ctid db: {junk}: is not a ctid backup (neither SQLite nor a pg_dump archive)"
    )


@pytest.mark.postgres
def test_postgresql_backup_and_restore(tmp_path: Path, pg_empty_url: str) -> None:
    if shutil.which("pg_dump") is None and os.environ.get("CI"):
        pytest.fail("pg_dump is not installed (.ci/run installs postgresql-client)")
    config = _config(tmp_path, "pg", pg_empty_url)

    def empty_it() -> None:
        import asyncio

        asyncio.run(_admin(pg_empty_url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public"))

    _roundtrip(tmp_path, config, config, reset=empty_it)

    # A SQLite backup does not go into PostgreSQL (and the message says so).
    sqlite_source = _config(tmp_path, "lite")
    _with_a_user(sqlite_source)
    lite_backup = tmp_path / "lite.backup"
    assert ctid(sqlite_source, "db", "backup", "--to", str(lite_backup)).returncode == 0
    empty_it()
    wrong = ctid(config, "db", "restore", str(lite_backup))
    assert wrong.returncode == 65
    assert "is a sqlite backup; the configured database is postgresql" in wrong.stderr


@pytest.mark.postgres
def test_postgresql_backup_without_pg_dump_exits_69(tmp_path: Path, pg_empty_url: str) -> None:
    config = _config(tmp_path, "pg", pg_empty_url)
    assert ctid(config, "db", "upgrade").returncode == 0
    no_tools = tmp_path / "empty-path"
    no_tools.mkdir()
    proc = ctid(
        config, "db", "backup", "--to", str(tmp_path / "x.dump"), env={"PATH": str(no_tools)}
    )
    assert proc.returncode == 69
    assert "pg_dump is not installed" in proc.stderr
    assert not (tmp_path / "x.dump").exists()
