"""The ChanSpy option letters per listen-in mode: known only to `ctid.asterisk.actions`."""

from __future__ import annotations

from ctid.asterisk.actions import (
    CHANSPY_COMMON,
    LISTEN_IN_CONTEXT,
    LISTEN_IN_RUN_CONTEXT,
    chanspy_data,
    chanspy_options,
    listen_in_variables,
)


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


def test_listen_in_variables_are_inherited_by_the_local_channel_that_spies() -> None:
    # `__`: Dial copies them to the Local ;1, which hands every variable to ;2 (ChanSpy's).
    assert listen_in_variables("PJSIP/seat1-0000000a", "whisper") == (
        ("__CTID_SPY_CHANNEL", "PJSIP/seat1-0000000a"),
        ("__CTID_SPY_OPTIONS", "uqEw"),
    )
    assert (LISTEN_IN_CONTEXT, LISTEN_IN_RUN_CONTEXT) == ("ctid-spy", "ctid-spy-run")
