"""Wheel build hook: compiles each language's gettext catalogs (`ctid/locale/<lang>/LC_MESSAGES/
*.po`, one per area) into one `ctid.mo`, so the installed package carries them."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CatalogBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        # ctid.i18n itself merges the catalogs (loaded from the source tree, not an install).
        spec = importlib.util.spec_from_file_location("_ctid_i18n", root / "ctid" / "i18n.py")
        assert spec is not None and spec.loader is not None
        i18n = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = i18n  # dataclasses look their module up while it executes
        try:
            spec.loader.exec_module(i18n)
        finally:
            del sys.modules[spec.name]
        out = Path(tempfile.mkdtemp(prefix="ctid-mo-"))
        for lang_dir in sorted(p for p in (root / "ctid" / "locale").iterdir() if p.is_dir()):
            mo = out / lang_dir.name / "ctid.mo"
            mo.parent.mkdir(parents=True)
            with mo.open("wb") as fh:
                write_mo(fh, i18n.merged_catalog(lang_dir.name), use_fuzzy=False)
            build_data["force_include"][str(mo)] = (
                f"ctid/locale/{lang_dir.name}/LC_MESSAGES/ctid.mo"
            )
