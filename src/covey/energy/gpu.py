"""Optional accelerators: NVIDIA GPUs through NVML, Apple Silicon through IOReport (zeus-apple-silicon).

Both libraries are optional extras and imported lazily; tests pass stand-in modules.
"""

from __future__ import annotations

import importlib
import logging
import threading
from types import ModuleType
from typing import Any

from covey.errors import EnergySensorError
from covey.types import EnergyMethod

logger = logging.getLogger(__name__)


def _import(name: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise EnergySensorError(f"no {extra}: the optional package providing `{name}` is not installed") from exc


class NvmlEnergySensor:
    """Total energy of every NVIDIA GPU from NVML's counter (Volta and newer), in joules.

    GPUs without the counter are reported through `NvmlPowerSensor` (power polling) instead.
    """

    name = "gpu"
    method = EnergyMethod.MEASURED
    scope = "device"  # GPU work is not in CPU time: a node's GPU is taken to work for covey alone
    uncertainty = 0.05
    idle_watts: float | None = None
    source = "nvml:total-energy"

    def __init__(self, nvml: Any = None) -> None:
        self.nvml = nvml if nvml is not None else _import("pynvml", "NVML")
        try:
            self.nvml.nvmlInit()
            count = self.nvml.nvmlDeviceGetCount()
        except Exception as exc:  # NVMLError has many subclasses; all mean 'no usable GPU'
            raise EnergySensorError(f"no NVML: initialisation failed ({exc})") from exc
        if count == 0:
            raise EnergySensorError("no NVML: no NVIDIA GPU found")
        self.handles = [self.nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        try:
            self._origin = self._total_mj()
        except Exception as exc:
            raise EnergySensorError(f"no NVML energy counter on this GPU ({exc}); use power polling") from exc

    def _total_mj(self) -> int:
        return sum(int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self.handles)

    def read_joules(self) -> float:
        return (self._total_mj() - self._origin) / 1000.0


class NvmlPowerSensor:
    """Power draw of every NVIDIA GPU (milliwatts from NVML), for integration by PowerIntegrator."""

    name = "gpu"
    method = EnergyMethod.MEASURED
    source = "nvml:power-polling"
    uncertainty = 0.1

    def __init__(self, nvml: Any = None) -> None:
        self.nvml = nvml if nvml is not None else _import("pynvml", "NVML")
        try:
            self.nvml.nvmlInit()
            self.handles = [self.nvml.nvmlDeviceGetHandleByIndex(i)
                            for i in range(self.nvml.nvmlDeviceGetCount())]
        except Exception as exc:
            raise EnergySensorError(f"no NVML: initialisation failed ({exc})") from exc
        if not self.handles:
            raise EnergySensorError("no NVML: no NVIDIA GPU found")

    def read_watts(self) -> float | None:
        return sum(self.nvml.nvmlDeviceGetPowerUsage(h) for h in self.handles) / 1000.0


class AppleSiliconSensor:
    """CPU + GPU + DRAM + ANE energy of an Apple Silicon SoC from IOReport via zeus-apple-silicon.

    The library measures windows; this keeps one window open and chains them into a counter.
    """

    name = "soc"
    method = EnergyMethod.MEASURED
    scope = "system"
    uncertainty = 0.1
    idle_watts: float | None = None
    source = "ioreport:zeus-apple-silicon"
    _FIELDS = ("cpu_total_mj", "gpu_mj", "dram_mj", "ane_mj")

    def __init__(self, module: Any = None) -> None:
        mod = module if module is not None else _import("zeus_apple_silicon", "Apple Silicon sensor")
        try:
            self.monitor = mod.AppleEnergyMonitor()
            self.monitor.begin_window("covey-0")
        except Exception as exc:
            raise EnergySensorError(f"no Apple Silicon sensor: IOReport unavailable ({exc})") from exc
        self._lock = threading.Lock()
        self._n = 0
        self._joules = 0.0

    def read_joules(self) -> float:
        with self._lock:
            metrics = self.monitor.end_window(f"covey-{self._n}")
            self._n += 1
            self.monitor.begin_window(f"covey-{self._n}")
            self._joules += sum((getattr(metrics, f, None) or 0) for f in self._FIELDS) / 1000.0
            return self._joules
