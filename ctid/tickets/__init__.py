"""Callers and incidents: the ITIL lifecycle (`lifecycle`, pure), the incident store (`store`:
incidents, callbacks, call facts, signed links) and the callers directory (`directory`)."""
