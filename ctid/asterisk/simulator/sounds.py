"""The simulated PBX's sounds directory: whether a prompt name can be played and for how long."""

# With `SimulatorConfig.sounds_dir` unset every prompt exists and plays `prompt_s`; with it set, a
# prompt is `DIR/<name>.wav` (or another format Asterisk reads) and a WAV plays for its real length,
# as Asterisk's file lookup does. A missing file is what `pjsip_missing_prompt` shows.

from __future__ import annotations

import wave
from pathlib import Path

_EXTENSIONS = ("wav", "WAV", "sln", "raw", "ulaw", "ul", "alaw", "al", "gsm", "g722", "sln16")
_RAW_BYTES_PER_S = {"sln": 16000, "raw": 16000, "ulaw": 8000, "ul": 8000, "alaw": 8000, "al": 8000}


def prompt_seconds(sounds_dir: Path | None, name: str, default_s: float) -> float | None:
    """How long `name` plays; None when the PBX has no such file (STREAM FILE fails)."""
    if sounds_dir is None:
        return default_s
    if ".." in Path(name).parts or Path(name).is_absolute():
        return None
    for ext in _EXTENSIONS:
        path = sounds_dir / f"{name}.{ext}"
        if not path.is_file():
            continue
        if ext in ("wav", "WAV"):
            try:
                with wave.open(str(path), "rb") as w:
                    return w.getnframes() / float(w.getframerate() or 8000)
            except (wave.Error, EOFError, OSError):
                return None  # format_wav refuses it: the same as no file
        per_s = _RAW_BYTES_PER_S.get(ext)
        return path.stat().st_size / per_s if per_s else default_s
    return None
