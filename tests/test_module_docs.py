"""House rules on every module under ctid/: a 1-3 line docstring saying what it owns, and no more
than ~700 lines unless that docstring says why (it mentions 700)."""

from __future__ import annotations

import ast

import pytest

from tests.paths import ROOT as REPO_ROOT

PACKAGE = REPO_ROOT / "ctid"
MAX_DOC_LINES = 3
MAX_LINES = 700

# Modules other branches were rewriting while the rule was enforced; the lead removes each entry
# once that branch has landed and the module complies.
ALLOWED = {
    "ctid/asterisk/actions.py": "f12c-local is editing it (docstring 5 lines)",
    "ctid/asterisk/translate.py": "f16b-fast is editing it (docstring 5 lines, 764 lines)",
    "ctid/calls/spy.py": "f12c-local is editing it (docstring 27 lines, 841 lines)",
    "ctid/calls/tracker.py": "f16b-fast is editing it (1018 lines, no reason given)",
}


def _modules() -> list[str]:
    return sorted(p.relative_to(REPO_ROOT).as_posix() for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("module", _modules())
def test_module_docstring_says_what_it_owns(module: str) -> None:
    if module in ALLOWED:
        pytest.skip(ALLOWED[module])
    text = (REPO_ROOT / module).read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(text, filename=module))
    assert doc, f"{module}: no module docstring"
    lines = doc.splitlines()
    assert len(lines) <= MAX_DOC_LINES, f"{module}: docstring has {len(lines)} lines"
    length = len(text.splitlines())
    assert length <= MAX_LINES or "700" in doc, (
        f"{module}: {length} lines and its docstring does not say why it is over {MAX_LINES}"
    )


def test_the_allow_list_names_only_modules_that_exist() -> None:
    assert sorted(ALLOWED) == sorted(set(ALLOWED) & set(_modules()))
