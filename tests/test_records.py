"""`record`: compared and hashed by fields, keyword-only when asked, slotted, and frozen to mypy."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

from ctid.core.events import ChannelStateChanged
from ctid.core.ids import Channel, UniqueId


def test_records_compare_and_hash_by_their_fields() -> None:
    a = ChannelStateChanged(
        at=1.0,
        channel=Channel("PJSIP/seat1-1"),
        uniqueid=UniqueId("1.1"),
        linkedid=UniqueId("1.1"),
        state=6,
    )
    b = ChannelStateChanged(
        at=1.0,
        channel=Channel("PJSIP/seat1-1"),
        uniqueid=UniqueId("1.1"),
        linkedid=UniqueId("1.1"),
        state=6,
    )
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert not hasattr(a, "__dict__")  # slotted: no stray attribute can be added
    with pytest.raises(TypeError):
        ChannelStateChanged(1.0, "c", "u", "l", 6)  # type: ignore[misc]


def test_mypy_refuses_assigning_a_field(tmp_path: Path) -> None:
    code = tmp_path / "assign.py"
    code.write_text(
        textwrap.dedent(
            """
            from ctid.core.events import ChannelStateChanged

            def bump(event: ChannelStateChanged) -> None:
                event.state = 5
            """
        )
    )
    out, _err, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(code)]
    )
    assert status == 1, out
    assert 'Property "state" defined in "ChannelStateChanged" is read-only' in out
