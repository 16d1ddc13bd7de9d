"""Wheel build hook: compiles the gettext catalogs (`ctid/locale/*/LC_MESSAGES/ctid.po`) to `.mo`
so the installed package carries them (a checkout compiles them in memory instead)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CatalogBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        out = Path(tempfile.mkdtemp(prefix="ctid-mo-"))
        for po in sorted((root / "ctid" / "locale").glob("*/LC_MESSAGES/ctid.po")):
            locale = po.parent.parent.name
            with po.open("rb") as fh:
                catalog = read_po(fh, locale=locale, domain="ctid")
            mo = out / locale / "ctid.mo"
            mo.parent.mkdir(parents=True, exist_ok=True)
            with mo.open("wb") as fh:
                write_mo(fh, catalog, use_fuzzy=False)
            build_data["force_include"][str(mo)] = f"ctid/locale/{locale}/LC_MESSAGES/ctid.mo"
