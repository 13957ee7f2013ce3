"""Battery discharge power on laptops and Android from /sys/class/power_supply, and battery state.

Kernel units are micro-watts, micro-amps and micro-volts, but the wild varies: some Android kernels
report milli-amps or milli-volts, and the sign of current_now differs between drivers (negative while
discharging on many phones). Discharge power is measured only while unplugged: on mains the battery
figure is charging power, not what the device uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from covey.errors import EnergySensorError
from covey.types import Battery, EnergyMethod

logger = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/sys/class/power_supply")
_MAINS_TYPES = {"Mains", "USB", "USB_C", "USB_PD", "Wireless"}


def _read_text(path: Path) -> str:
    return path.read_text()


class BatterySensor:
    """Discharge power of the first battery; `read_watts()` is None while plugged in."""

    name = "battery"
    method = EnergyMethod.MEASURED
    uncertainty = 0.1

    def __init__(self, root: Path = DEFAULT_ROOT, *, read: Callable[[Path], str] = _read_text) -> None:
        self.root = Path(root)
        self._read = read
        self.battery_dir = self._find(("Battery",))
        if self.battery_dir is None:
            raise EnergySensorError(f"no battery: nothing of type Battery under {self.root}")
        self.source = f"power_supply:{self.battery_dir.name}"

    def _find(self, types: tuple[str, ...]) -> Path | None:
        if not self.root.is_dir():
            return None
        for d in sorted(self.root.iterdir()):
            if self._get(d, "type") in types:
                return d
        return None

    def _get(self, d: Path, field: str) -> str | None:
        try:
            return self._read(d / field).strip()
        except (OSError, ValueError):
            return None

    def _num(self, field: str) -> float | None:
        assert self.battery_dir is not None
        raw = self._get(self.battery_dir, field)
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None

    def on_battery(self) -> bool:
        """True when discharging: status says so, or no mains supply reports online."""
        assert self.battery_dir is not None
        status = (self._get(self.battery_dir, "status") or "").lower()
        if status == "discharging":
            return True
        if status in {"charging", "full", "not charging"}:
            return False
        online = [self._get(d, "online") for d in sorted(self.root.iterdir())
                  if self._get(d, "type") in _MAINS_TYPES]
        return bool(online) and all(o == "0" for o in online)

    def percent(self) -> float:
        cap = self._num("capacity")
        if cap is not None:
            return max(0.0, min(100.0, cap))
        now, full = self._num("energy_now") or self._num("charge_now"), (
            self._num("energy_full") or self._num("charge_full"))
        if now is not None and full:
            return max(0.0, min(100.0, 100.0 * now / full))
        return 100.0

    def read_watts(self) -> float | None:
        if not self.on_battery():
            return None
        power = self._num("power_now")
        if power is not None and power != 0:
            return abs(power) / 1e6
        current, voltage = self._num("current_now"), self._num("voltage_now")
        if current is None or voltage is None:
            logger.warning("battery %s has neither power_now nor current_now/voltage_now", self.source)
            return None
        amps = abs(current) / (1e3 if abs(current) < 10_000 else 1e6)  # < 10 mA in uA is mA in disguise
        volts = abs(voltage) / (1e3 if abs(voltage) < 100_000 else 1e6)  # < 0.1 V in uV is mV
        return amps * volts

    def reading(self) -> Battery:
        return Battery(present=True, on_battery=self.on_battery(), percent=self.percent())


def read_battery(root: Path = DEFAULT_ROOT, *, read: Callable[[Path], str] = _read_text) -> Battery:
    """The node's battery state for its announcement; `Battery(present=False)` on mains-only machines."""
    try:
        return BatterySensor(root, read=read).reading()
    except EnergySensorError:
        return Battery(present=False, on_battery=False, percent=100.0)
