"""contrib/nginx/ctid.conf fits ctid: it proxies to the example's web port, upgrades WebSockets
on ctid's /ws/ paths and passes the headers ctid reads (Origin, Host, X-Forwarded-For)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONF = (ROOT / "contrib" / "nginx" / "ctid.conf").read_text(encoding="utf-8")


def test_proxies_to_the_configured_port_with_tls() -> None:
    web = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))["web"]
    assert f"server {web['listen_host']}:{web['listen_port']};" in CONF
    assert re.search(r"listen 443 ssl", CONF)
    assert "ssl_certificate " in CONF
    assert "return 301 https://" in CONF


def test_websocket_upgrade_and_forwarded_headers() -> None:
    ws = CONF[CONF.index("location /ws/") :]
    for line in (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        'proxy_set_header Connection "upgrade";',
        "proxy_set_header Origin $http_origin;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header Host $host;",
    ):
        assert line in ws, line
    assert CONF.count("{") == CONF.count("}")
