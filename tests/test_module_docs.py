"""House rules on every module under ctid/: a 1-3 line docstring saying what it owns, and no more
than ~700 lines unless that docstring says why (it mentions 700)."""

from __future__ import annotations

import ast

import pytest

from tests.paths import ROOT as REPO_ROOT

PACKAGE = REPO_ROOT / "ctid"
MAX_DOC_LINES = 3
MAX_LINES = 700

# Modules that do not comply yet (each with what is wrong); remove an entry once its module does.
ALLOWED: dict[str, str] = {}


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
