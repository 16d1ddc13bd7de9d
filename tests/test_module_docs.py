"""House rules on every module under ctid/: a 1-3 line docstring saying what it owns, and no more
than ~700 lines unless that docstring says why (it mentions 700)."""

from __future__ import annotations

import ast

import pytest

from tests.paths import ROOT as REPO_ROOT

PACKAGE = REPO_ROOT / "ctid"
MAX_DOC_LINES = 3
MAX_LINES = 700

# Modules other branches were rewriting while the rule was enforced, and modules that landed on
# main after this test was written; the lead removes each entry once its module complies.
ALLOWED = {
    "ctid/asterisk/actions.py": "f12c-local is editing it (docstring 5 lines)",
    "ctid/asterisk/translate.py": "f16b-fast is editing it (docstring 5 lines, 764 lines)",
    "ctid/calls/spy.py": "f12c-local is editing it (docstring 27 lines, 841 lines)",
    "ctid/calls/tracker.py": "f16b-fast is editing it (1018 lines, no reason given)",
    "ctid/asterisk/simulator/chanspy.py": "from f12c-local on main (docstring 4 lines)",
    "ctid/rotation/roster.py": "from f13b-board on main (docstring 4 lines, with its 700 reason)",
    "ctid/tickets/notices.py": "from main (docstring 4 lines)",
    "ctid/web/incident_pages.py": "f14c is editing it (810 lines, no reason given)",
    "ctid/web/incident_report_pages.py": "f14c's pages (docstring 4 lines)",
    "ctid/web/incident_view.py": "f14c's pages (docstring 4 lines)",
    "ctid/web/kb_api.py": "f14c's pages (docstring 4 lines)",
    "ctid/web/wallboard_pages.py": "f13b's wallboard (docstring 4 lines)",
}


def _modules() -> list[str]:
    return sorted(p.relative_to(REPO_ROOT).as_posix() for p in PACKAGE.rglob("*.py"))


def _problem(module: str) -> str | None:
    text = (REPO_ROOT / module).read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(text, filename=module))
    if not doc:
        return f"{module}: no module docstring"
    lines = doc.splitlines()
    if len(lines) > MAX_DOC_LINES:
        return f"{module}: docstring has {len(lines)} lines"
    length = len(text.splitlines())
    if length > MAX_LINES and "700" not in doc:
        return f"{module}: {length} lines and its docstring does not say why it is over {MAX_LINES}"
    return None


@pytest.mark.parametrize("module", _modules())
def test_module_docstring_says_what_it_owns(module: str) -> None:
    if module in ALLOWED:
        pytest.skip(ALLOWED[module])
    assert _problem(module) is None
