"""The ChanSpy option letters per listen-in mode: known only to `ctid.asterisk.actions`."""

from __future__ import annotations

from ctid.asterisk.actions import CHANSPY_COMMON, chanspy_data, chanspy_options


def test_each_mode_has_its_options_on_top_of_exact_quiet_and_exit() -> None:
    assert CHANSPY_COMMON == "uqE"
    assert chanspy_options("listen") == "uqE"
    assert chanspy_options("whisper") == "uqEw"
    assert chanspy_options("barge") == "uqEB"
    assert "B" not in chanspy_options("whisper")
    assert "w" not in chanspy_options("barge")


def test_chanspy_data_is_the_full_channel_name_and_the_options() -> None:
    assert chanspy_data("PJSIP/seat1-0000000a", "listen") == "PJSIP/seat1-0000000a,uqE"
    assert chanspy_data("Local/seat3@phones-0000000e;1", "barge") == (
        "Local/seat3@phones-0000000e;1,uqEB"
    )
