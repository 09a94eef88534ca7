"""Prometheus metrics of the server, in one registry per app (tests run several apps).

With `--workers N` every worker is its own process with its own counters; a scrape reaches
one of them. So `serve` runs the Prometheus client's multiprocess mode there: the parent
points `PROMETHEUS_MULTIPROC_DIR` at a fresh folder before the workers start, each worker
writes its values to files in it, and `/metrics` in any worker adds up all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from policyroute.decision import Decision
from policyroute.runtime.attempts import Attempt

# Upstream answers take from a few hundred milliseconds to minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The folder of multiprocess mode, when this process runs in it."""
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess(folder: str | os.PathLike[str]) -> None:
    """Make `folder` the multiprocess folder of the workers about to start: created, and
    emptied of an earlier run's values (they would be added to this run's)."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir()
        self.registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode the values live in the shared files and are read back by the
        # collector at each scrape; registering the live objects too would count them twice.
        r = None if self.multiprocess else self.registry
        self.requests = Counter(
            "policyroute_requests",
            "Routed requests by the tier that answered, the deciding rule and outcome.",
            ("tier", "rule", "outcome"),
            registry=r,
        )
        self.passthrough = Counter(
            "policyroute_passthrough_requests",
            "Requests passed upstream untouched (a model that is not routed, other endpoints).",
            ("endpoint", "status"),
            registry=r,
        )
        self.count_tokens = Counter(
            "policyroute_count_tokens_requests",
            "Routed `count_tokens` requests (a routed model name), by the decided tier and rule "
            "and the upstream's status.",
            ("tier", "rule", "status"),
            registry=r,
        )
        self.escalations = Counter(
            "policyroute_escalations",
            "Escalations (a step up the ladder) by the trigger that fired.",
            ("trigger",),
            registry=r,
        )
        self.sticky_raises = Counter(
            "policyroute_sticky_raises",
            "Decisions raised to a conversation's previous tier by `sticky conversations`.",
            registry=r,
        )
        self.cost = Counter(
            "policyroute_cost_usd",
            "USD spent on routed requests, by tier (generation and classification).",
            ("tier",),
            registry=r,
        )
        self.tokens = Counter(
            "policyroute_tokens",
            "Tokens of routed requests, by tier and kind (input, output, cache_read, cache_write).",
            ("tier", "kind"),
            registry=r,
        )
        self.upstream_latency = Histogram(
            "policyroute_upstream_latency_seconds",
            "Upstream latency of each attempt (to the full answer; streams to their end).",
            ("tier",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "policyroute_errors",
            "Requests answered with an error by policyroute itself, by status.",
            ("status",),
            registry=r,
        )
        self.reloads = Counter(
            "policyroute_policy_reloads",
            "Policy reloads: ok (a new revision went live) or rejected (kept the last good one).",
            ("result",),
            registry=r,
        )
        self.client_disconnects = Counter(
            "policyroute_client_disconnects",
            "Clients that hung up before their request was read (not errors of policyroute).",
            ("stage",),
            registry=r,
        )
        self.in_flight = Gauge(
            "policyroute_in_flight_requests",
            "Requests being served now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                self.registry, path=self.multiprocess
            )

    def forwarded(self, endpoint: str, status: int, decision: Decision | None = None) -> None:
        """A request sent upstream as it came: a routed `count_tokens` (its model decided),
        or one passed through."""
        if decision is not None:
            self.count_tokens.labels(decision.tier, decision.rule, str(status)).inc()
        else:
            self.passthrough.labels(endpoint, str(status)).inc()

    def attempts(self, attempts: list[Attempt]) -> None:
        for a in attempts:
            if a.cost_usd:
                self.cost.labels(a.tier).inc(a.cost_usd)
            for kind, n in (
                ("input", a.input_tokens),
                ("output", a.output_tokens),
                ("cache_read", a.cache_read_tokens),
                ("cache_write", a.cache_creation_tokens),
            ):
                if n:
                    self.tokens.labels(a.tier, kind).inc(n)
            if a.latency_ms:
                self.upstream_latency.labels(a.tier).observe(a.latency_ms / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        """This process is ending: its live gauges no longer count."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                os.getpid(), self.multiprocess
            )
