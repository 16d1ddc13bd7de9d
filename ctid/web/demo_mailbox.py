"""The demo's mailbox page: every mail the demo's SMTP catcher caught, newest first, its links
clickable (dispatch → accept/reject → resolve → survey). Only `ctid demo` starts it, on loopback."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from ctid.web.html import Markup, esc

_URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class CaughtMail:
    at: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str


def _linkify(text: str) -> Markup:
    out: list[str] = []
    last = 0
    for m in _URL.finditer(text):
        out.append(esc(text[last : m.start()]))
        out.append(f'<a href="{esc(m.group(0))}" target="_blank">{esc(m.group(0))}</a>')
        last = m.end()
    out.append(esc(text[last:]))
    return Markup("".join(out))


def mailbox_html(mails: Sequence[CaughtMail]) -> str:
    items = []
    for i, m in enumerate(reversed(mails)):
        items.append(
            f"<article><h2>#{len(mails) - i} {esc(m.subject)}</h2>"
            f"<p class=meta>{esc(m.at)} · from {esc(m.sender)} · to {esc(', '.join(m.recipients))}"
            f"</p><pre>{_linkify(m.body)}</pre></article>"
        )
    body = "".join(items) or "<p>No mail yet: dispatch an incident or close one.</p>"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta http-equiv="refresh" content="10"><title>ctid demo mailbox</title>'
        "<style>body{font-family:sans-serif;max-width:60rem;margin:1rem auto}"
        "article{border-bottom:1px solid #ccc}pre{white-space:pre-wrap}.meta{color:#555}</style>"
        f"</head><body><h1>ctid demo mailbox ({len(mails)})</h1>{body}</body></html>"
    )


class MailboxPage:
    """`async with MailboxPage(mails, port) as page:` serves the list at `page.url`."""

    def __init__(self, mails: Callable[[], Sequence[CaughtMail]], port: int = 0) -> None:
        self._mails = mails
        self._port = port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _index(self, _request: web.Request) -> web.Response:
        return web.Response(text=mailbox_html(self._mails()), content_type="text/html")

    async def __aenter__(self) -> MailboxPage:
        app = web.Application()
        app.router.add_get("/", self._index)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
