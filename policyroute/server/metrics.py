"""Prometheus metrics of the server, in one registry per app (tests run several apps)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from policyroute.runtime.attempts import Attempt

# Upstream answers take from a few hundred milliseconds to minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
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
        self.in_flight = Gauge(
            "policyroute_in_flight_requests", "Requests being served now.", registry=r
        )

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
