"""The IVR's shipped placeholder prompts (Mandarin and English, 8 kHz WAV inside the package),
installing them under an Asterisk sounds directory, and checking a directory has every prompt.
"""

from ctid.prompts.catalog import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    TEXTS,
    Language,
    Prompt,
    required_prompts,
)
from ctid.prompts.sounds import (
    SoundProblem,
    check_sounds,
    install_prompts,
    prompt_seconds,
    shipped_file,
)

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "TEXTS",
    "Language",
    "Prompt",
    "SoundProblem",
    "check_sounds",
    "install_prompts",
    "prompt_seconds",
    "required_prompts",
    "shipped_file",
]
