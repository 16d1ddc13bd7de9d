"""The HTML escaping helper every page goes through: `Markup` is trusted HTML, anything else is
escaped when it is put into a template (`render`) or joined (`join`). There is no other way to
put data into a page."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from string import Template

_VOID = frozenset({"br", "hr", "img", "input", "link", "meta"})


class Markup(str):
    """HTML that ctid wrote itself (a template or an already-escaped fragment)."""

    __slots__ = ()


def esc(value: object) -> Markup:
    """`value` as HTML text (quotes escaped too, so it is safe in attribute values)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def render(template: str, **values: object) -> Markup:
    """Fill a `string.Template` (`$name`) — every value is escaped unless it is `Markup`."""
    return Snippet(template)(**values)


class Snippet:
    """A `render` template parsed once, for markup drawn many times a page (a table's rows)."""

    __slots__ = ("_template",)

    def __init__(self, template: str) -> None:
        self._template = Template(template)

    def __call__(self, **values: object) -> Markup:
        return Markup(self._template.substitute({k: esc(v) for k, v in values.items()}))


def join(parts: Iterable[object], sep: str = "") -> Markup:
    return Markup(esc(sep).join(esc(p) for p in parts))


def attrs(values: Mapping[str, object]) -> Markup:
    """` name="value"` pairs for an element; None and False leave the attribute out."""
    out: list[str] = []
    for name, value in values.items():
        if value is None or value is False:
            continue
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"bad attribute name {name!r}")
        out.append(f" {name}" if value is True else f' {name}="{esc(value)}"')
    return Markup("".join(out))


def tag(name: str, content: object = "", /, **attributes: object) -> Markup:
    """`<name attrs>content</name>`; a trailing underscore in an attribute name is dropped
    (`class_`), other underscores become dashes (`data_seat`)."""
    if not name.isalnum():
        raise ValueError(f"bad tag name {name!r}")
    named = {k.rstrip("_").replace("_", "-"): v for k, v in attributes.items()}
    if name in _VOID:
        return Markup(f"<{name}{attrs(named)}>")
    return Markup(f"<{name}{attrs(named)}>{esc(content)}</{name}>")
