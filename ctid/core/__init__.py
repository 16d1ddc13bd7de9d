"""Core vocabulary of ctid: ids, events, notices, effects, desktop frames, clock, ports and errors
(stdlib only)."""
