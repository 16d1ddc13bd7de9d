"""Core vocabulary of ctid (stdlib only): ids, the PBX's events, the call story's notices and read
models, effects, desktop frames, the clock port, errors, the acting person, SLA and desk words."""
