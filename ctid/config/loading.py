"""Reading the TOML file: environment overrides, validation with every problem reported at once,
paths made relative to the file, and what `ctid run` needs beyond a valid document."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ctid.config.checks import check_config, lenient_config
from ctid.config.models import ENV_OVERRIDES, Config
from ctid.core.errors import ConfigError


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for var, path in ENV_OVERRIDES.items():
        if var in env and env[var] != "":
            node = raw
            for key in path[:-1]:
                existing = node.get(key)
                if not isinstance(existing, dict):
                    existing = {}
                    node[key] = existing
                node = existing
            node[path[-1]] = env[var]


def parse_config(raw: dict[str, Any], source: str = "config") -> Config:
    """Validate an already-parsed TOML document. Raises `ConfigError` with every problem."""
    cfg, lines = check_config(raw, source)
    if cfg is None:
        raise ConfigError(lines)
    return cfg


def deployment_problems(
    cfg: Config, source: str, env: Mapping[str, str] | None = None
) -> list[str]:
    """What `ctid run` needs beyond a valid document: secrets that are set (here or in their
    environment variable) and referenced files that exist and can be read."""
    env = os.environ if env is None else env
    problems: list[str] = []
    if not cfg.ami.secret.get_secret_value():
        problems.append(f"{source}: ami.secret: is empty (set it here or in CTID_AMI_SECRET)")
    if cfg.smtp.enabled and cfg.smtp.username and not cfg.smtp.password.get_secret_value():
        problems.append(
            f"{source}: smtp.password: is empty while smtp.username is set "
            "(set it here or in CTID_SMTP_PASSWORD)"
        )
    file = cfg.hours.holidays_file
    if file is not None:
        if not file.is_file():
            problems.append(f"{source}: hours.holidays_file: {file} does not exist")
        elif not os.access(file, os.R_OK):
            problems.append(f"{source}: hours.holidays_file: {file} cannot be read")
    return problems


def load_config(
    path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    *,
    deployment: bool = False,
) -> Config:
    """Read, override from the environment, and validate the TOML file at `path`. Relative
    paths in it (data_dir, holidays_file) are relative to the file. `deployment=True` adds what
    running needs (`deployment_problems`), reported together with every other problem."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{source}: (file): does not exist"]) from None
    except OSError as exc:
        raise ConfigError([f"{source}: (file): cannot be read ({exc.strerror})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: (syntax): not valid TOML ({exc})"]) from None
    env = os.environ if env is None else env
    _apply_env(raw, env)
    cfg, problems = check_config(raw, source)
    if cfg is None and not deployment:
        raise ConfigError(problems)
    if cfg is None:
        # Still say what running would need, from the parts that did validate.
        lenient = lenient_config(raw)
        if lenient is not None:
            problems += deployment_problems(_relative_to(lenient, source), source, env)
        raise ConfigError(problems)
    cfg = _relative_to(cfg, source)
    if deployment:
        late = deployment_problems(cfg, source, env)
        if late:
            raise ConfigError(late)
    return cfg


def _relative_to(cfg: Config, source: str) -> Config:
    base = Path(source).resolve().parent
    site, hours = cfg.site, cfg.hours
    if not site.data_dir.is_absolute():
        site = site.model_copy(update={"data_dir": base / site.data_dir})
    if hours.holidays_file is not None and not hours.holidays_file.is_absolute():
        hours = hours.model_copy(update={"holidays_file": base / hours.holidays_file})
    return cfg.model_copy(update={"site": site, "hours": hours})
