"""KPI definitions and queries over stored facts (`kpi`), the monthly agent review
(`agent_month`), text/CSV rendering (`render`) and the `ctid report` commands (`command`)."""

from ctid.reports.command import agent_month_command, report_command, seat_time_command
from ctid.reports.period import ReportError

__all__ = ["ReportError", "agent_month_command", "report_command", "seat_time_command"]
