"""Where the tests find their data: the committed copy of the Asterisk 22 recordings (so a fresh
checkout runs alone), checked against the project's shared/ami-transcripts when that is beside it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRANSCRIPTS = ROOT / "tests" / "fixtures" / "ami-transcripts"
SHARED_TRANSCRIPTS = ROOT.parent / "shared" / "ami-transcripts"
