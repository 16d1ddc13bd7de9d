"""The shipped IVR prompts: one per configured prompt in both languages, 8 kHz mono 16-bit WAV,
small; the status prompts follow the incident lifecycle; and with the example config a caller
who presses nothing reaches a queue within `ivr.no_input_max_s` (20 s) using their real lengths."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from ctid.config import Config, load_config
from ctid.prompts import LANGUAGES, TEXTS, Language, required_prompts, shipped_file
from ctid.prompts.catalog import INCIDENT_STATUSES
from ctid.tickets.lifecycle import STATUSES

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config(EXAMPLE, env={})


def test_status_prompts_follow_the_incident_lifecycle() -> None:
    assert INCIDENT_STATUSES == STATUSES


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_configured_prompt_ships_as_8khz_wav(cfg: Config, language: Language) -> None:
    prompts = required_prompts(cfg)
    assert {p.key for p in prompts} == set(TEXTS)
    assert len(prompts) == len(type(cfg.ivr.prompts).model_fields) - 1 + len(STATUSES)
    total = 0
    for prompt in prompts:
        path = shipped_file(prompt.key, language)
        with wave.open(str(path), "rb") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
            seconds = w.getnframes() / 8000
        assert 0.5 < seconds < 10, (prompt.key, seconds)
        total += path.stat().st_size
    assert total < 1_200_000  # placeholders stay small in the repository and the wheel


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_input_reaches_a_queue_within_the_bound(cfg: Config, language: Language) -> None:
    seconds = {}
    for prompt in required_prompts(cfg):
        with wave.open(str(shipped_file(prompt.key, language)), "rb") as w:
            seconds[prompt.key] = w.getnframes() / w.getframerate()
    path = cfg.ivr.no_input_path_s(seconds, overflow=True)
    assert cfg.ivr.no_input_max_s == 20
    assert path <= cfg.ivr.no_input_max_s, (language, path)
    # the path counts Answer(), the welcome, and the menu with its wait once per play
    plays = cfg.ivr.silence_replays + 1
    expected = 0.5 + seconds["welcome"] + plays * (seconds["menu"] + cfg.ivr.digit_timeout_s)
    assert cfg.ivr.no_input_path_s(seconds) == pytest.approx(expected)


def test_config_refuses_waits_alone_over_the_bound() -> None:
    from ctid.config import parse_config
    from ctid.core.errors import ConfigError

    raw = {
        "seats": [{"id": "s1", "name": "S", "tier": "ordinary", "interface": "PJSIP/s1"}],
        "queues": [{"name": "ordinary", "tiers": {"ordinary": 0}}],
        "ivr": {"digit_timeout_s": 8.0, "silence_replays": 2, "options": []},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(raw, "t.toml")
    assert err.value.problems == [
        "t.toml: ivr.digit_timeout_s: a caller who presses nothing waits 24.5 s before any "
        "prompt plays ((silence_replays + 1) x digit_timeout_s + 0.5 s Answer), over "
        "ivr.no_input_max_s = 20 (got 8.0)"
    ]
