"""Development check of the catalogs: which marked strings have no translation (scripts/i18n and
tests/test_i18n.py use it)."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.extract import extract_from_dir

from ctid import i18n

KEYWORDS = {
    "N_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "t": None,
}
METHODS = [("**.py", "python"), ("web/static/**.js", "javascript")]


def marked_strings(root: Path | None = None) -> set[str]:
    """Every msgid marked in ctid's Python sources and page scripts."""
    base = root or Path(i18n.__file__).resolve().parent
    found: set[str] = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(base), METHODS, keywords=KEYWORDS
    ):
        ids = message if isinstance(message, tuple) else (message,)
        found.update(m for m in ids[:1] if m)
    return found


def missing(locale: str = "zh_CN") -> list[str]:
    # A plural entry's id is (singular, plural); the singular is what marked_strings() holds.
    have = {m.id[0] if isinstance(m.id, tuple) else m.id for m in i18n.merged_catalog(locale)}
    return sorted(marked_strings() - {str(h) for h in have if h})


def main() -> int:
    gaps = missing()
    for msgid in gaps:
        escaped = msgid.replace("\\", "\\\\").replace('"', '\\"')
        print(f'msgid "{escaped}"\nmsgstr ""\n')
    print(f"# {len(gaps)} string(s) without Chinese", file=sys.stderr)
    return 1 if gaps else 0


if __name__ == "__main__":
    raise SystemExit(main())
