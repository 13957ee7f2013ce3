"""What a device node needs from covey.energy, built from settings in one place.

The node calls `open(label)` per request (the meter), `observe(...)` with each Final, reads
`joules_per_token()` and `battery()` for its NodeInfo, asks `power_cap(...)` for a loop to step
between tokens, and may `serve_metrics()` for Prometheus.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from covey.energy.battery import read_battery
from covey.energy.detect import DetectedMeter, detect_meter
from covey.energy.policy import BatteryDecision, BatteryPolicy
from covey.energy.powercap import PowerCapController
from covey.energy.prometheus import MetricsServer, NodeEnergyStats, render_metrics
from covey.settings import Settings
from covey.types import Battery, Energy

logger = logging.getLogger(__name__)


class NodeEnergy:
    def __init__(self, settings: Settings, *, meter: DetectedMeter | None = None,
                 read_battery: Callable[[], Battery] = read_battery, node_name: str = "") -> None:
        self.settings = settings
        self.meter = meter or detect_meter(settings)
        self.stats = NodeEnergyStats()
        self.policy = BatteryPolicy(settings.energy.battery_min_percent)
        self.read_battery = read_battery
        self.node_name = node_name
        self._metrics: MetricsServer | None = None

    def describe(self) -> str:
        return self.meter.describe()

    def observe(self, model_id: str, energy: Energy, completion_tokens: int) -> None:
        self.stats.observe(model_id, energy, completion_tokens)

    def joules_per_token(self, model_id: str | None = None) -> float:
        return self.stats.joules_per_token(model_id)

    def battery(self) -> tuple[Battery, BatteryDecision]:
        b = self.read_battery()
        return b, self.policy.decide(b)

    def power_cap(self, set_threads: Callable[[int], None], max_threads: int,
                  min_threads: int = 1) -> PowerCapController | None:
        """A closed loop for one generation when a cap is set (None otherwise)."""
        cap = self.settings.energy.power_cap_watts
        if cap is None:
            return None
        return PowerCapController(cap, self.meter.read_power_w, set_threads, min_threads, max_threads)

    def render_metrics(self) -> str:
        return render_metrics(self.stats, node=self.node_name, power_watts=self.meter.last_watts,
                              battery=self.read_battery(), meter=self.meter.describe())

    def serve_metrics(self, host: str = "127.0.0.1", port: int | None = None) -> MetricsServer | None:
        """Start the Prometheus endpoint on settings.energy.metrics_port (or `port`); None when off."""
        port = self.settings.energy.metrics_port if port is None else port
        if port is None:
            return None
        self._metrics = MetricsServer(self.render_metrics, host=host, port=port)
        logger.info("Prometheus metrics on %s", self._metrics.url)
        return self._metrics

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        self.meter.close()
