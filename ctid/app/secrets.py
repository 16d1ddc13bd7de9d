"""Part of the composition root's startup: the site secret the root hands to the web (cookies) and
the incident store (e-mailed links), from `web.cookie_secret`/CTID_WEB_SECRET or generated once."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ctid.config import Config
from ctid.core.errors import ConfigError

SECRET_FILE = "secret.key"


def site_secret(cfg: Config) -> bytes:
    configured = cfg.web.cookie_secret.get_secret_value()
    if configured:
        if len(configured) < 16:
            raise ConfigError(
                ["web.cookie_secret: must be at least 16 characters (got a shorter one)"]
            )
        return configured.encode()
    path: Path = cfg.site.data_dir / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except ValueError as exc:
        raise ConfigError([f"{path}: (file): is not a ctid secret ({exc})"]) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_bytes(32)
    # O_EXCL: two ctid processes starting at once must not each write a different secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value.hex())
    return value
