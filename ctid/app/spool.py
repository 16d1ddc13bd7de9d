"""Moved to `ctid.spool`; kept until `app/web_ports.py` (another branch) stops importing it."""

from ctid.spool import WriteSpool

__all__ = ["WriteSpool"]
