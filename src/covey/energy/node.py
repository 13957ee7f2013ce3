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
        self._cap: PowerCapController | None = None  # the last generation's loop: where the next one starts

    def describe(self) -> str:
        """The full paragraph: every source tried and why (for `-v` and `covey node calibrate`)."""
        return self.meter.describe()

    def summary(self) -> str:
        """One line for a node's start-up: measured or estimated, and from what."""
        summary = getattr(self.meter, "summary", None)
        return summary() if callable(summary) else self.meter.describe()

    def observe(self, model_id: str, energy: Energy, completion_tokens: int) -> None:
        self.stats.observe(model_id, energy, completion_tokens)

    def joules_per_token(self, model_id: str | None = None) -> float:
        return self.stats.joules_per_token(model_id)

    def battery(self) -> tuple[Battery, BatteryDecision]:
        b = self.read_battery()
        return b, self.policy.decide(b)

    def plan_threads(self, max_threads: int) -> tuple[int, float | None] | None:
        """Under a power cap: the most threads whose estimated power stays under it, and that estimate.

        None without a cap; the estimate is None where the meter has no CPU power curve. The closed loop
        starts each generation here (or where the last one settled) and corrects from measured power.
        """
        cap = self.settings.energy.power_cap_watts
        if cap is None:
            return None
        max_threads = max(1, max_threads)
        model = getattr(self.meter, "cpu_model", None)
        if model is None:
            return max_threads, None
        logical = max(getattr(self.meter, "logical_cpus", max_threads), 1)
        fits = [n for n in range(1, max_threads + 1) if model.watts(n / logical) <= cap]
        n = max(fits, default=1)
        return n, model.watts(n / logical)

    def describe_cap(self, max_threads: int) -> str:
        """One line confirming the power cap and the thread count chosen for it ('' without a cap)."""
        plan = self.plan_threads(max_threads)
        if plan is None:
            return ""
        n, watts = plan
        cap = self.settings.energy.power_cap_watts
        assert cap is not None  # plan_threads plans only under a cap
        est = f", estimated {watts:.1f} W" if watts is not None else ""
        over = " (even one thread is estimated above the cap)" if watts is not None and watts > cap else ""
        return (f"power cap {cap:g} W: {n} of {max_threads} llama.cpp threads{est}{over}; "
                f"adjusted from measured power between tokens")

    def power_cap(self, set_threads: Callable[[int], None], max_threads: int,
                  min_threads: int = 1) -> PowerCapController | None:
        """A closed loop for one generation when a cap is set (None otherwise)."""
        plan = self.plan_threads(max_threads)
        if plan is None:
            return None
        cap = self.settings.energy.power_cap_watts
        assert cap is not None  # plan_threads plans only under a cap
        start = self._cap.threads if self._cap is not None and self._cap.max_threads == max_threads else plan[0]
        self._cap = PowerCapController(cap, self.meter.read_power_w, set_threads,
                                       min_threads, max_threads, start_threads=start)
        return self._cap

    def render_metrics(self) -> str:
        return render_metrics(self.stats, node=self.node_name, power_watts=self.meter.last_watts,
                              battery=self.read_battery(), meter=getattr(self.meter, "kind", "") or "unknown",
                              method="estimated" if getattr(self.meter, "estimate_only", False) else "measured")

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
