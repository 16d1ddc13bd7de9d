"""Reports from stored facts: the KPIs (`kpi`), time per seat state, the monthly agent review, the
incident reports, their tables and CSVs for the web, text/CSV rendering and the `ctid report`
commands (`command`)."""

from ctid.reports.command import agent_month_command, report_command, seat_time_command
from ctid.reports.period import ReportError

__all__ = ["ReportError", "agent_month_command", "report_command", "seat_time_command"]
