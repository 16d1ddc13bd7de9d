"""Callers and incidents: the ITIL lifecycle and their store."""
