"""Calls and seats: live state from events, the three-ring and talk-cap policies, seat state and
call control for the desk, the IVR, the keypad survey and supervisor listen-in."""
