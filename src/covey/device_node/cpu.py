"""CPU facts for llama.cpp's weight-buffer choice: model name and feature flags, and whether to repack.

llama.cpp repacks weights into "extra" buffer types (AMX tiles, x86/ARM repacked quant blocks) when the
CPU supports them. On Intel Xeons with AMX (Sapphire Rapids and later) the AMX buffers of the builds pip
makes segfault on the first decode (llama.cpp issue #20824, stanfordnlp/dspy PR #10079), so `auto`
turns the extra buffers off there and leaves them on elsewhere, where they only make generation faster.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

WeightBuffers = Literal["auto", "on", "off"]

AMX_FLAGS = frozenset({"amx_tile", "amx_int8", "amx_bf16", "amx_fp16", "amx_complex"})
"""/proc/cpuinfo flags of Intel Advanced Matrix Extensions."""

KNOWN_CRASH = "llama.cpp #20824: AMX weight-repack buffers segfault on the first decode"


@dataclass(frozen=True)
class CpuFacts:
    model: str
    flags: frozenset[str]
    machine: str = ""

    @property
    def amx(self) -> frozenset[str]:
        return self.flags & AMX_FLAGS

    def flags_hash(self) -> str:
        return hashlib.sha256(" ".join(sorted(self.flags)).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class BufferChoice:
    """What to try first, and whether a crash of that try may fall back to the safe options."""

    use_extra_bufts: bool
    reason: str
    may_fall_back: bool


def _sysctl(name: str) -> str:
    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5,
                              check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def read_cpu_facts(cpuinfo: Path = Path("/proc/cpuinfo"), *, system: str | None = None,
                   sysctl: Callable[[str], str] = _sysctl) -> CpuFacts:
    """This CPU's model and flags: /proc/cpuinfo (Linux, Android/Termux), sysctl (macOS), else platform."""
    machine = platform.machine()
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        text = ""
    if text:
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            key = key.strip().lower()
            if sep and key not in fields:  # the first processor block speaks for all
                fields[key] = value.strip()
        device = fields.get("model", "")  # a number on x86, the board on a Pi ("Raspberry Pi 5 Model B")
        model = (fields.get("model name") or (device if not device.isdigit() else "") or fields.get("hardware")
                 or fields.get("cpu part") or "")
        flags = fields.get("flags") or fields.get("features") or ""  # x86 | ARM (Termux, Pi)
        return CpuFacts(model=model, flags=frozenset(flags.lower().split()), machine=machine)
    if (system or platform.system()) == "Darwin":
        model = sysctl("machdep.cpu.brand_string")
        flags = " ".join(sysctl(k) for k in ("machdep.cpu.features", "machdep.cpu.leaf7_features"))
        return CpuFacts(model=model, flags=frozenset(flags.lower().replace(".", "_").split()), machine=machine)
    return CpuFacts(model=platform.processor() or machine, flags=frozenset(), machine=machine)


def choose_weight_buffers(setting: WeightBuffers, cpu: CpuFacts) -> BufferChoice:
    """The weight-buffer options to try first on this CPU, and why.

    `on` and `off` are the user's word and never fall back; `auto` starts with the extra buffers except
    where they are known to crash, and falls back to the safe options if the canary still crashes.
    """
    if setting == "on":
        return BufferChoice(True, "extra weight buffers on (set by weight_buffers=on)", may_fall_back=False)
    if setting == "off":
        return BufferChoice(False, "extra weight buffers off (set by weight_buffers=off)", may_fall_back=False)
    if cpu.amx:
        return BufferChoice(False, f"extra weight buffers off: this CPU has AMX ({', '.join(sorted(cpu.amx))}) "
                                   f"and {KNOWN_CRASH}", may_fall_back=False)
    return BufferChoice(True, "extra weight buffers on (weight_buffers=auto; no known crash on this CPU)",
                        may_fall_back=True)
