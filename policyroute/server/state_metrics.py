"""/metrics of the runtime's state: whether it answers, and how often it did not.

Read from the state's own counters at scrape time (a collector, not counters bumped on the
request path), so a Redis outage costs a request nothing extra to report.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from policyroute.runtime.state import State

# One family per key of the state's health: (kind, name, help, key).
FAMILIES: tuple[tuple[type[GaugeMetricFamily | CounterMetricFamily], str, str, str], ...] = (
    (
        GaugeMetricFamily,
        "policyroute_state_up",
        "Whether the state (sticky floors, spend) answered its last call (1) or not (0).",
        "up",
    ),
    (
        CounterMetricFamily,
        "policyroute_state_failures",
        "State calls that failed or timed out; the request went on without the state.",
        "failures",
    ),
    (
        CounterMetricFamily,
        "policyroute_state_skipped",
        "State calls not tried while backing off after a failure.",
        "skipped",
    ),
    (
        CounterMetricFamily,
        "policyroute_state_dropped_usd",
        "Spend (USD) that could not be added to the shared counters.",
        "dropped_usd",
    ),
)


class StateCollector(Collector):
    def __init__(self, state: State) -> None:
        self.state = state

    def collect(self) -> Iterator[Any]:
        health = self.state.health.as_dict()
        backend = self.state.describe()
        for kind, name, documentation, key in FAMILIES:
            family = kind(name, documentation, labels=["backend"])
            family.add_metric([backend], health[key])
            yield family


def register_state_metrics(registry: CollectorRegistry, state: State) -> None:
    registry.register(StateCollector(state))
