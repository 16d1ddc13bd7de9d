"""contrib/grafana/ctid.json: a Grafana dashboard whose every query uses only metrics the daemon's
registry exports, and that shows what ops watch (calls, loss, pops, loop, AMI, queues)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ctid.app.daemon import Daemon
from ctid.metrics import metric_names
from tests.e2e.harness import desk_config

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "contrib" / "grafana" / "ctid.json"

# A PromQL selector names a metric: an identifier not followed by "(" (a function) and not a
# label name inside {...} or by (...), which the stripping below removes first.
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_PROMQL_WORDS = {
    "sum", "by", "without", "rate", "increase", "histogram_quantile", "max", "min", "avg",
    "count", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
    "offset",
}  # fmt: skip


def exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from exprs(item)


def metric_names_in(expr: str) -> set[str]:
    text = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors ([$__interval])
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"\$\w+", "", text)
    names = set()
    for m in _NAME.finditer(text):
        word = m.group(0)
        if word in _PROMQL_WORDS or text[m.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


async def test_every_dashboard_metric_is_exported(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["title"] and dashboard["uid"]
    queries = list(exprs(dashboard["panels"]))
    assert queries
    used: set[str] = set()
    for q in queries:
        found = metric_names_in(q)
        assert found, f"no metric in {q!r}"
        used |= found
    # The registry the composition root builds and /metrics serves.
    daemon = Daemon(desk_config(tmp_path, 5038, 4573))
    try:
        exported = metric_names(daemon.registry)
    finally:
        await daemon.engine.dispose()
    assert sorted(used - exported) == []
    # The figures the issue asks the dashboard for are all on it.
    for name in (
        "ctid_calls_offered_total",
        "ctid_calls_answered_total",
        "ctid_calls_abandoned_total",
        "ctid_ring_cuts_total",
        "ctid_auto_pauses_total",
        "ctid_talk_cap_actions_total",
        "ctid_pop_latency_seconds_bucket",
        "ctid_event_loop_lag_seconds_bucket",
        "ctid_ami_up",
        "ctid_ami_reconnects_total",
        "ctid_ami_events_total",
        "ctid_ami_action_errors_total",
        "ctid_websocket_clients",
        "ctid_db_write_backlog",
        "ctid_mail_outbox_depth",
        "ctid_mail_failures_total",
        "ctid_queue_log_lag_seconds",
    ):
        assert name in used, name
    quantiles = [q for q in queries if "histogram_quantile" in q and "ctid_pop_latency" in q]
    assert {q.split(",")[0] for q in quantiles} == {
        "histogram_quantile(0.5",
        "histogram_quantile(0.99",
    }


def test_the_name_parser_reads_promql() -> None:
    expr = (
        'sum by (seat) (increase(ctid_ring_cuts_total{seat=~"seat.*"}[$__interval])) '
        "/ on (seat) ctid_x_total"
    )
    assert metric_names_in(expr) == {"ctid_ring_cuts_total", "ctid_x_total"}
