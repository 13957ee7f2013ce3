"""Checks on the figures other nodes report: speeds, energy and RAM are claims, not facts.

A node's joules land in the user's ledger and its speed and J/token steer placement, so a figure that
cannot be true (NaN, infinite, negative, or beyond any device covey runs on) is replaced by "unknown"
and flagged with the node's identity. An implausible figure is never a reason to lose an answer.
"""

from __future__ import annotations

import logging
import math

from covey.types import EnergyComponent, EnergyMethod, NodeInfo

logger = logging.getLogger(__name__)

MAX_TOKENS_PER_SECOND = 5_000.0
"""Per model on one device: above this (small models on a fast GPU reach ~1,000) it is a claim."""
MIN_JOULES_PER_TOKEN = 1e-3
"""1 mJ per token: below what any measured device does for a generated token, even an accelerator."""
MAX_JOULES_PER_TOKEN = 1_000.0
MAX_ANSWER_JOULES = 3.6e6
"""One kWh for one attempt at one answer: beyond it the figure is broken, not expensive."""
MAX_RAM_BYTES = 1 << 46  # 64 TiB
MAX_CORES = 4096


def _bad(x: float, low: float, high: float) -> bool:
    return not math.isfinite(x) or x < low or x > high


def checked_info(info: NodeInfo) -> NodeInfo:
    """The snapshot with implausible figures set to 0 ("unknown") and each one named in `flags`."""
    fixes: dict[str, object] = {}
    flags: list[str] = []

    def drop(field: str, value: float, why: str) -> None:
        fixes[field] = 0 if isinstance(getattr(info, field), int) else 0.0
        flags.append(f"{field}={value!r} ignored ({why})")

    if info.tokens_per_second and _bad(info.tokens_per_second, 0.0, MAX_TOKENS_PER_SECOND):
        drop("tokens_per_second", info.tokens_per_second, f"outside 0-{MAX_TOKENS_PER_SECOND:.0f} tok/s")
    if info.joules_per_token and _bad(info.joules_per_token, MIN_JOULES_PER_TOKEN, MAX_JOULES_PER_TOKEN):
        drop("joules_per_token", info.joules_per_token,
             f"outside {MIN_JOULES_PER_TOKEN:g}-{MAX_JOULES_PER_TOKEN:g} J/token")
    for field in ("ram_total_bytes", "ram_free_bytes", "model_ram_cap_bytes"):
        value = getattr(info, field)
        if value and _bad(value, 0, MAX_RAM_BYTES):
            drop(field, value, "beyond any device")
    if info.ram_total_bytes and info.ram_free_bytes > info.ram_total_bytes and "ram_total_bytes" not in fixes:
        drop("ram_free_bytes", info.ram_free_bytes, "more free than total")
    if info.cpu_cores and _bad(info.cpu_cores, 0, MAX_CORES):
        drop("cpu_cores", info.cpu_cores, "beyond any device")
    battery = info.battery
    if battery.present and _bad(battery.percent, 0.0, 100.0):
        fixes["battery"] = battery.model_copy(update={"present": False})
        flags.append(f"battery={battery.percent!r}% ignored (not a charge level)")
    models = []
    for m in info.models:
        if m.tokens_per_second and _bad(m.tokens_per_second, 0.0, MAX_TOKENS_PER_SECOND):
            flags.append(f"{m.model_id} tokens_per_second={m.tokens_per_second!r} ignored")
            m = m.model_copy(update={"tokens_per_second": 0.0})
        models.append(m)
    if not flags:
        return info
    fixes["models"] = tuple(models)
    fixes["flags"] = tuple(flags)
    return info.model_copy(update=fixes)


def checked_component(node: str, *, name: str, joules: float, marginal_joules: float, method: EnergyMethod,
                      source: str, uncertainty: float, uncertainty_high: float | None = None) -> EnergyComponent:
    """An energy component a node reported, or an unknown (0 J, flagged) one when it cannot be true."""
    figures = (joules, marginal_joules)
    if (any(_bad(x, 0.0, MAX_ANSWER_JOULES) for x in figures) or _bad(uncertainty, 0.0, 1e3)
            or (uncertainty_high is not None and _bad(uncertainty_high, 0.0, 1e3))):
        logger.warning("node %s reported an implausible energy figure for %s: %r J (marginal %r, +/-%r)",
                       node, name, joules, marginal_joules, uncertainty)
        return EnergyComponent(name=name, joules=0.0, method=EnergyMethod.ESTIMATED, uncertainty=1.0,
                               source=f"implausible figure from node '{node}' ({joules!r} J) ignored; "
                                      "real cost unknown")
    return EnergyComponent(name=name, joules=joules, marginal_joules=marginal_joules, method=method, source=source,
                           uncertainty=uncertainty, uncertainty_high=uncertainty_high)
