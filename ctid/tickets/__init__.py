"""Callers and incidents: the ITIL lifecycle (pure), the incident, callback and call-fact stores,
the callers directory and profiles, notes and the timeline, SLA clocks and the knowledge base."""
