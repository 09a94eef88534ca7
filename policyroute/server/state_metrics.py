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


class StateCollector(Collector):
    def __init__(self, state: State) -> None:
        self.state = state

    def collect(self) -> Iterator[Any]:
        health = self.state.health.as_dict()
        backend = self.state.describe()
        up = GaugeMetricFamily(
            "policyroute_state_up",
            "Whether the state (sticky floors, spend) answered its last call (1) or not (0).",
            labels=["backend"],
        )
        up.add_metric([backend], health["up"])
        yield up
        failures = CounterMetricFamily(
            "policyroute_state_failures",
            "State calls that failed or timed out; the request went on without the state.",
            labels=["backend"],
        )
        failures.add_metric([backend], health["failures"])
        yield failures
        skipped = CounterMetricFamily(
            "policyroute_state_skipped",
            "State calls not tried while backing off after a failure.",
            labels=["backend"],
        )
        skipped.add_metric([backend], health["skipped"])
        yield skipped
        dropped = CounterMetricFamily(
            "policyroute_state_dropped_usd",
            "Spend (USD) that could not be added to the shared counters.",
            labels=["backend"],
        )
        dropped.add_metric([backend], health["dropped_usd"])
        yield dropped


def register_state_metrics(registry: CollectorRegistry, state: State) -> None:
    registry.register(StateCollector(state))
