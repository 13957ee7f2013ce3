"""Raspberry Pi 5 board power from its PMIC through `vcgencmd pmic_read_adc`.

The output pairs a current and a voltage per rail::

    3V3_SYS_A current(1)=0.05660040A
    3V3_SYS_V volt(9)=3.31252800V

Power is the sum of current x voltage over rails that have both. The PMIC does not see USB
peripherals or the 5 V input stage, so this under-reads the wall figure (hence the band).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable

from covey.errors import EnergySensorError
from covey.types import EnergyMethod

_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([0-9.eE+-]+)[AV]\s*$")


def run_vcgencmd(argv: list[str]) -> str:
    """Run `vcgencmd` (the Raspberry Pi firmware tool) and return its output."""
    if shutil.which(argv[0]) is None:
        raise FileNotFoundError(f"{argv[0]} is not on PATH")
    return subprocess.run(argv, capture_output=True, text=True, timeout=2, check=True).stdout


def parse_pmic(output: str) -> float:
    """Watts from `vcgencmd pmic_read_adc` output; raises ValueError when no rail pairs are found."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in output.splitlines():
        m = _LINE.match(line)
        if m:
            rail, kind, value = m.group(1), m.group(2), float(m.group(3))
            (amps if kind == "A" else volts)[rail] = value
    rails = amps.keys() & volts.keys()
    if not rails:
        raise ValueError("no rail with both current and voltage in pmic_read_adc output")
    return sum(amps[r] * volts[r] for r in rails)


class PiPmicSensor:
    """Board power of a Raspberry Pi 5; raises EnergySensorError where vcgencmd or the PMIC is absent."""

    name = "board"
    method = EnergyMethod.MEASURED
    source = "pi5-pmic:vcgencmd"
    uncertainty = 0.15

    def __init__(self, run: Callable[[list[str]], str] = run_vcgencmd) -> None:
        self._run = run
        try:
            self.read_watts()
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            raise EnergySensorError(f"no Pi 5 PMIC: `vcgencmd pmic_read_adc` failed ({exc})") from exc

    def read_watts(self) -> float | None:
        return parse_pmic(self._run(["vcgencmd", "pmic_read_adc"]))
