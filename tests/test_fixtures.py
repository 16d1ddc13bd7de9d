"""The committed recordings are byte-for-byte the shared ground truth (when it is beside us)."""

from __future__ import annotations

import pytest

from tests.paths import SHARED_TRANSCRIPTS, TRANSCRIPTS


def test_committed_recordings_match_the_shared_ones() -> None:
    if not SHARED_TRANSCRIPTS.is_dir():
        pytest.skip(f"{SHARED_TRANSCRIPTS} is not beside this checkout")
    shared = {p.name: p.read_bytes() for p in SHARED_TRANSCRIPTS.iterdir() if p.is_file()}
    ours = {p.name: p.read_bytes() for p in TRANSCRIPTS.iterdir() if p.is_file()}
    assert ours == shared
