"""Linux RAPL through powercap: package (or psys) zones, wrap-around, permission diagnosis.

Layout (Intel, and AMD since Linux 5.8 through the same driver)::

    /sys/class/powercap/intel-rapl:0/{name=package-0, energy_uj, max_energy_range_uj}
    /sys/class/powercap/intel-rapl:0:0/{name=core}     inside the package: not added
    /sys/class/powercap/intel-rapl:0:1/{name=uncore}   inside the package: not added
    /sys/class/powercap/intel-rapl:0:2/{name=dram}     outside the package: added
    /sys/class/powercap/intel-rapl:1/{name=psys}       the whole platform: used alone when present

Since the Platypus fix (CVE-2020-8694) energy_uj is readable by root only.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from covey.errors import EnergySensorError
from covey.types import EnergyMethod

logger = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/sys/class/powercap")
_TOP = re.compile(r"^intel-rapl:(\d+)$")
_SUB = re.compile(r"^intel-rapl:(\d+):(\d+)$")


def _read_text(path: Path) -> str:
    return path.read_text()


@dataclass
class _Zone:
    path: Path
    name: str
    max_range_uj: int
    last_uj: int
    total_uj: int = 0


def _permission_fix(root: Path) -> str:
    return (f"{root}/intel-rapl:*/energy_uj is root-only since the Platypus fix: run "
            f"`sudo chmod o+r {root}/intel-rapl:*/energy_uj {root}/intel-rapl:*:*/energy_uj` "
            "(until reboot; a udev rule makes it permanent) or run the node as root")


class RaplSensor:
    """Cumulative joules over the chosen RAPL zones; raises EnergySensorError when unusable."""

    method = EnergyMethod.MEASURED
    scope = "system"
    uncertainty = 0.05
    idle_watts: float | None = None

    def __init__(self, root: Path = DEFAULT_ROOT, *, read: Callable[[Path], str] = _read_text) -> None:
        self.root = Path(root)
        self._read = read
        self._lock = threading.Lock()
        self.zones = self._choose_zones()
        names = [z.name for z in self.zones]
        self.name = "platform" if names == ["psys"] else "cpu"
        self.source = "rapl:" + "+".join(names)

    def _choose_zones(self) -> list[_Zone]:
        if not self.root.is_dir():
            raise EnergySensorError(f"no RAPL: {self.root} does not exist (not Linux, or a VM without powercap)")
        tops, dram = [], []
        for d in sorted(self.root.iterdir()):
            if _TOP.match(d.name):
                tops.append(d)
            elif _SUB.match(d.name) and self._name(d) == "dram":
                dram.append(d)
        if not tops:
            raise EnergySensorError(f"no RAPL: {self.root} has no intel-rapl:N zones")
        psys = [d for d in tops if self._name(d) == "psys"]
        packages = [d for d in tops if self._name(d).startswith("package")]
        chosen = psys if psys else packages + dram
        if not chosen:
            raise EnergySensorError(f"no RAPL: zones under {self.root} are neither package nor psys")
        return [self._zone(d) for d in chosen]

    def _name(self, d: Path) -> str:
        try:
            return self._read(d / "name").strip()
        except OSError:
            return ""

    def _zone(self, d: Path) -> _Zone:
        try:
            uj = int(self._read(d / "energy_uj").strip())
        except PermissionError as exc:
            raise EnergySensorError(f"no RAPL reading: {_permission_fix(self.root)}") from exc
        except (OSError, ValueError) as exc:
            raise EnergySensorError(f"no RAPL reading: {d / 'energy_uj'} is unreadable ({exc})") from exc
        try:
            max_range = int(self._read(d / "max_energy_range_uj").strip())
        except (OSError, ValueError):
            max_range = 2**32  # the RAPL MSR is 32 bits; a safe guess when the file is missing
        return _Zone(path=d, name=self._name(d), max_range_uj=max_range, last_uj=uj)

    def read_joules(self) -> float:
        """Joules since this sensor was built, across counter wrap-arounds (one per read at most)."""
        with self._lock:
            total = 0
            for z in self.zones:
                now = int(self._read(z.path / "energy_uj").strip())
                delta = now - z.last_uj
                if delta < 0:  # wrapped: counts from last up to max_range, then from 0 to now
                    delta += z.max_range_uj
                z.total_uj += delta
                z.last_uj = now
                total += z.total_uj
            return total / 1e6
