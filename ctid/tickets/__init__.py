"""Callers and incidents: the ITIL lifecycle (`lifecycle`, pure), the incident store (`store`:
incidents, callbacks, call facts, signed links), the callers directory (`directory`), caller
profiles (`profiles`), contacts, work notes and the timeline (`timeline`), SLA clocks (`sla`) and
the knowledge base (`kb`, search terms in `terms`)."""
