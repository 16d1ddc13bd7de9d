"""ctid's Prometheus metrics on a registry the composition root owns and passes in: counters fed by
the call story on the bus, the pop-latency and event-loop-lag histograms, and a collector that
reads the daemon's gauges (AMI link, sockets, write queues, mail outbox, queue_log) at scrape time."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias, assert_never, get_args

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ctid.core.calls import CallEnded, CallOutcome, SeatRingEnded
from ctid.core.effects import AlertSupervisors, NotifySeat, RecordRingMiss
from ctid.core.frames import PopFrame, SeatFrame

log = structlog.get_logger(__name__)

MetricItem: TypeAlias = CallEnded | SeatRingEnded | RecordRingMiss | AlertSupervisors | NotifySeat
"""The bus items `CallMetrics.on_item` counts (subscribe it to these)."""

CAP_ACTIONS = ("hangup", "notify", "transfer_expert")

POP_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Around the pop budget (p99 <= 5 ms; 20 ms end to end): fine below 10 ms, coarse above."""
LAG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_PENDING_POPS = 512
"""AgentCalled receipts waiting for their pop; older ones (a ring that never popped) are dropped."""


class CallMetrics:
    """Counts the call story told on the bus. Calls are counted when they end, so offered,
    answered and abandoned always add up: offered = reached a queue (not the closed-hours path),
    as `ctid report` counts them (without its service-hours filter)."""

    def __init__(self, registry: CollectorRegistry, seats: Sequence[str]) -> None:
        self.offered = Counter(
            "ctid_calls_offered",
            "Calls that reached a queue (counted when they end).",
            registry=registry,
        )
        self.answered = Counter(
            "ctid_calls_answered", "Offered calls a seat answered.", registry=registry
        )
        self.abandoned = Counter(
            "ctid_calls_abandoned",
            "Offered calls the caller hung up on while queued or ringing.",
            registry=registry,
        )
        self.ended = Counter(
            "ctid_calls_ended",
            "Hotline calls that ended, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.ring_cuts = Counter(
            "ctid_ring_cuts",
            "Ringing seat legs ctid cut at the ring deadline, by seat.",
            ["seat"],
            registry=registry,
        )
        self.ring_misses = Counter(
            "ctid_ring_misses",
            "Calls a seat let ring past the ring limit, by seat.",
            ["seat"],
            registry=registry,
        )
        self.auto_pauses = Counter(
            "ctid_auto_pauses",
            "Seats paused by ctid after repeated ring misses (reason rna), by seat.",
            ["seat"],
            registry=registry,
        )
        self.cap_warnings = Counter(
            "ctid_talk_cap_warnings", "Talk-cap warnings told to seats.", registry=registry
        )
        self.cap_actions = Counter(
            "ctid_talk_cap_actions",
            "Calls that reached the talk cap, by the action taken.",
            ["action"],
            registry=registry,
        )
        # Every series exists from the start at 0, so rate() and increase() see the first event.
        for outcome in get_args(CallOutcome):
            self.ended.labels(outcome=outcome)
        for seat in seats:
            for family in (self.ring_cuts, self.ring_misses, self.auto_pauses):
                family.labels(seat=seat)
        for action in CAP_ACTIONS:
            self.cap_actions.labels(action=action)

    def on_item(self, item: MetricItem) -> None:
        match item:
            case CallEnded(record=record):
                self.ended.labels(outcome=record.outcome).inc()
                if record.queued_at is None or record.outcome == "closed_hours":
                    return
                self.offered.inc()
                if record.outcome == "answered":
                    self.answered.inc()
                elif record.outcome == "abandoned_in_queue":
                    self.abandoned.inc()
            case SeatRingEnded(reason=reason, seat=seat):
                if reason == "cut":
                    self.ring_cuts.labels(seat=seat).inc()
            case RecordRingMiss(seat=seat):
                self.ring_misses.labels(seat=seat).inc()
            case AlertSupervisors(kind=kind, seat=seat):
                if kind == "auto_pause" and seat is not None:
                    self.auto_pauses.labels(seat=seat).inc()
            case NotifySeat(kind=kind, action=action):
                if kind == "cap_warning":
                    self.cap_warnings.inc()
                else:
                    self.cap_actions.labels(action=action or "unknown").inc()
            case _:
                assert_never(item)


class PopLatency:
    """`AgentCalled` received → the seat's ringing pop handed to its sockets, on the loop clock.

    The daemon calls `agent_called` when it translates the frame and the push hub calls
    `frame_published` for every frame; they meet on the call id (the AMI Linkedid)."""

    def __init__(self, registry: CollectorRegistry, now: Callable[[], float]) -> None:
        self._now = now
        self._pending: OrderedDict[str, float] = OrderedDict()
        self.histogram = Histogram(
            "ctid_pop_latency_seconds",
            "AgentCalled received from AMI until the seat's ringing pop frame is handed to its "
            "WebSocket senders.",
            buckets=POP_BUCKETS_S,
            registry=registry,
        )

    def agent_called(self, call_id: str) -> None:
        pending = self._pending
        pending[call_id] = self._now()
        pending.move_to_end(call_id)
        while len(pending) > _PENDING_POPS:
            pending.popitem(last=False)

    def frame_published(self, seat: str, frame: SeatFrame, delivered: int) -> None:
        # A `PopFrame` in state `ringing` is the pop.
        if not isinstance(frame, PopFrame) or frame.state != "ringing":
            return
        started = self._pending.pop(frame.call_id, None)
        if started is not None:
            self.histogram.observe(max(0.0, self._now() - started))


class LoopLag:
    """A loop task that sleeps `interval_s` and records how late it woke: the time every other
    callback waited for the loop (a blocking call shows up here first)."""

    def __init__(self, registry: CollectorRegistry, interval_s: float) -> None:
        self._interval = interval_s
        self.histogram = Histogram(
            "ctid_event_loop_lag_seconds",
            f"How late the event loop ran a timer that was due (sampled every {interval_s:g} s).",
            buckets=LAG_BUCKETS_S,
            registry=registry,
        )

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            self.histogram.observe(max(0.0, loop.time() - due))


# --------------------------------------------------------------------------- scrape-time readings


@dataclass(frozen=True, slots=True)
class AmiReading:
    up: bool
    reconnects: int
    events: int
    """Events received since start (all links)."""
    refused: Mapping[str, int] = field(default_factory=dict)
    """`Response: Error` answers by action name."""


@dataclass(frozen=True, slots=True)
class MailReading:
    outbox: int
    """Mails waiting to be sent (pending or being sent)."""
    failed: int
    """Outbox rows given up on (they stay for ops to see)."""
    sent: int
    failures: int
    """Mails given up since start."""


@dataclass(frozen=True, slots=True)
class QueueLogReading:
    position_bytes: int
    """Where the next read starts (the oldest call still open, else the end of what was read)."""
    behind_bytes: int
    """Bytes the file has grown by since the last pass read it."""
    lag_s: float
    """0 when nothing is unread, else seconds since the last pass began (the unread lines
    were written after it)."""
    passes: int


@dataclass(frozen=True, slots=True)
class Readings:
    ami: AmiReading
    websocket_clients: int
    bus_backlog: int
    write_backlog: Mapping[str, int]
    """Writes waiting for the database, by queue (the event path's spool, the rota's work)."""
    mail: MailReading | None = None
    queue_log: QueueLogReading | None = None


EMPTY = Readings(AmiReading(False, 0, 0), 0, 0, {})


class ServiceCollector(Collector):
    """The daemon's gauges and counters kept elsewhere, read when scraped: `refresh()` (async:
    the mail outbox is a database count) then `collect()` (what `generate_latest` calls)."""

    def __init__(
        self, registry: CollectorRegistry, read: Callable[[], Awaitable[Readings]]
    ) -> None:
        self._read = read
        self._last = EMPTY
        self._lock = asyncio.Lock()
        registry.register(self)

    async def refresh(self) -> None:
        """Read the daemon now; a failure is logged and the last readings stay."""
        async with self._lock:  # two scrapes at once read once each, in turn
            try:
                self._last = await self._read()
            except asyncio.CancelledError:
                raise
            except Exception:  # a scrape is one unit of work: report, never break /metrics
                log.exception("metrics_read_failed")

    def collect(self) -> Iterable[Metric]:
        return list(_families(self._last))


def _families(r: Readings) -> Iterator[Metric]:
    yield GaugeMetricFamily("ctid_ami_up", "1 while ctid is logged in to AMI.", value=int(r.ami.up))
    yield CounterMetricFamily(
        "ctid_ami_reconnects", "AMI logins after the first one.", value=r.ami.reconnects
    )
    yield CounterMetricFamily(
        "ctid_ami_events",
        "AMI events received (rate() gives events per second).",
        value=r.ami.events,
    )
    refused = CounterMetricFamily(
        "ctid_ami_action_errors",
        "Actions Asterisk answered with Response: Error, by action.",
        labels=["action"],
    )
    for action, count in sorted(r.ami.refused.items()):
        refused.add_metric([action], count)
    yield refused
    yield GaugeMetricFamily(
        "ctid_websocket_clients", "Desktops connected over WebSocket.", value=r.websocket_clients
    )
    yield GaugeMetricFamily(
        "ctid_bus_backlog", "Items waiting on the event bus.", value=r.bus_backlog
    )
    writes = GaugeMetricFamily(
        "ctid_db_write_backlog",
        "Writes waiting for the database (in order, retried while it fails), by queue.",
        labels=["queue"],
    )
    for queue, depth in sorted(r.write_backlog.items()):
        writes.add_metric([queue], depth)
    yield writes
    mail = r.mail
    outbox = GaugeMetricFamily("ctid_mail_outbox_depth", "Mails waiting to be sent.")
    failed = GaugeMetricFamily("ctid_mail_outbox_failed", "Outbox mails given up on, kept for ops.")
    sent = CounterMetricFamily("ctid_mail_sent", "Mails handed to the SMTP server since start.")
    failures = CounterMetricFamily("ctid_mail_failures", "Mails given up on since start.")
    if mail is not None:
        outbox.add_metric([], mail.outbox)
        failed.add_metric([], mail.failed)
        sent.add_metric([], mail.sent)
        failures.add_metric([], mail.failures)
    yield from (outbox, failed, sent, failures)
    ql = r.queue_log
    position = GaugeMetricFamily(
        "ctid_queue_log_position_bytes", "Where the next queue_log read starts (byte offset)."
    )
    behind = GaugeMetricFamily(
        "ctid_queue_log_behind_bytes", "queue_log bytes written since the last reconcile read."
    )
    lag = GaugeMetricFamily(
        "ctid_queue_log_lag_seconds",
        "0 when every queue_log line is read, else seconds since the last reconcile began.",
    )
    passes = CounterMetricFamily("ctid_queue_log_reconciles", "queue_log reconcile passes done.")
    if ql is not None:
        position.add_metric([], ql.position_bytes)
        behind.add_metric([], ql.behind_bytes)
        lag.add_metric([], ql.lag_s)
        passes.add_metric([], ql.passes)
    yield from (position, behind, lag, passes)


class Metrics:
    """Every metric of one daemon on `registry` (built once by the composition root)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        seats: Sequence[str],
        now: Callable[[], float],
        loop_lag_interval_s: float,
        read: Callable[[], Awaitable[Readings]],
    ) -> None:
        self.registry = registry
        self.calls = CallMetrics(registry, seats)
        self.pops = PopLatency(registry, now)
        self.loop_lag = LoopLag(registry, loop_lag_interval_s)
        self.service = ServiceCollector(registry, read)

    async def refresh(self) -> None:
        await self.service.refresh()


_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def metric_names(registry: CollectorRegistry) -> set[str]:
    """Every series name `registry` can expose (`ctid_calls_offered_total`, `…_bucket`, …), from
    the families' names and types, so a family with no sample yet still counts."""
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SAMPLE_SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names
