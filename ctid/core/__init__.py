"""Core vocabulary of ctid: ids, events, effects, clock, ports and errors (stdlib only)."""
