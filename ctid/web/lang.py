"""Shorthands for the page modules: the request's `Translator` (chosen by the language
middleware: the `ctid_lang` cookie, else `Accept-Language`, else `site.language`) and the words
a page's script needs. `/lang` itself is served by `login_pages` (the nav's switch)."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from ctid.config import Config
from ctid.i18n import Translator
from ctid.web.edge import LANG_COOKIE
from ctid.web.html import Markup
from ctid.web.middleware import translator_of
from ctid.web.pages import words_json

__all__ = ["LANG_COOKIE", "request_locale", "request_translator", "words_script"]


def request_locale(request: web.Request, cfg: Config) -> str:
    """The request's locale (`zh_CN` | `en`), as the middleware chose it."""
    del cfg
    return translator_of(request).locale


def request_translator(request: web.Request, cfg: Config) -> Translator:
    """The request's translator (`cfg` is not needed any more: the middleware chose it)."""
    del cfg
    return translator_of(request)


def words_script(t: Translator, messages: Iterable[str]) -> Markup:
    """The words a page's script needs, as JSON its `t()` reads (see `pages.words_json`)."""
    return words_json(t, tuple(messages))
