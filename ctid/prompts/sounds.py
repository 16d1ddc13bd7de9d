"""Prompt files on disk: the shipped WAVs, `ctid prompts install` (copy them under the configured
names) and the check `ctid doctor --sounds-dir` runs (every configured prompt is there, playable).
"""

from __future__ import annotations

import shutil
import wave
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ctid.config import Config
from ctid.core.errors import CtidError
from ctid.prompts.catalog import Language, Prompt, required_prompts

# File extensions Asterisk plays for a prompt name, as its format modules register them (the
# common ones). A name is found when any of them exists.
NATIVE_EXTENSIONS = ("wav", "WAV", "sln", "raw", "ulaw", "ul", "alaw", "al", "gsm", "g722", "sln16")
_WAV_RATE = 8000  # format_wav: 8 kHz mono 16-bit linear; anything else is refused or transcoded


@dataclass(frozen=True)
class SoundProblem:
    """One prompt that is missing or unplayable under a sounds directory."""

    prompt: Prompt
    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem} (ivr prompt {self.prompt.key} = {self.prompt.name!r})"


def shipped_file(key: str, language: Language) -> Path:
    """The packaged placeholder for a prompt key."""
    path = Path(str(resources.files("ctid.prompts") / "sounds" / language / f"{key}.wav"))
    if not path.is_file():
        raise CtidError(f"no shipped {language} prompt for {key!r} ({path})")
    return path


def _target(dest: Path, name: str, ext: str = "wav") -> Path:
    target = dest / f"{name}.{ext}"
    # Names come from config: refuse one that would write outside the sounds directory.
    if ".." in Path(name).parts or Path(name).is_absolute():
        raise CtidError(f"prompt name {name!r} leaves the sounds directory")
    return target


def install_prompts(cfg: Config, dest: Path, language: Language) -> list[Path]:
    """Copy the shipped prompts of `language` to `dest/<configured name>.wav`; the paths written."""
    written: list[Path] = []
    for prompt in required_prompts(cfg):
        source = shipped_file(prompt.key, language)
        target = _target(dest, prompt.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    return written


def _wav_problem(path: Path) -> str | None:
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
    except (wave.Error, EOFError, OSError) as exc:
        return f"is not a readable WAV file ({exc})"
    if (rate, channels, width) != (_WAV_RATE, 1, 2):
        return (
            f"is {rate} Hz, {channels} channel(s), {width * 8}-bit; Asterisk's .wav needs 8000 Hz "
            "mono 16-bit (convert: sox IN -r 8000 -c 1 -b 16 OUT.wav)"
        )
    return None


def check_sounds(cfg: Config, sounds_dir: Path) -> list[SoundProblem]:
    """Every configured prompt that has no playable file under `sounds_dir`."""
    out: list[SoundProblem] = []
    for prompt in required_prompts(cfg):
        try:
            wav = _target(sounds_dir, prompt.name)
        except CtidError as exc:
            out.append(SoundProblem(prompt, sounds_dir, str(exc)))
            continue
        found = [_target(sounds_dir, prompt.name, e) for e in NATIVE_EXTENSIONS]
        present = [p for p in found if p.is_file()]
        if not present:
            out.append(SoundProblem(prompt, wav, "is missing (ctid prompts install --dest DIR)"))
            continue
        if present[0].suffix == ".wav":
            problem = _wav_problem(present[0])
            if problem is not None:
                out.append(SoundProblem(prompt, present[0], problem))
    return out


def prompt_seconds(cfg: Config, sounds_dir: Path) -> dict[str, float]:
    """Play length of each configured prompt key that is a readable WAV under `sounds_dir`."""
    out: dict[str, float] = {}
    for prompt in required_prompts(cfg):
        path = _target(sounds_dir, prompt.name)
        try:
            with wave.open(str(path), "rb") as w:
                out[prompt.key] = w.getnframes() / float(w.getframerate() or 1)
        except (wave.Error, EOFError, OSError):
            continue
    return out
