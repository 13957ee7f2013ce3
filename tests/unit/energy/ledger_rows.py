"""Builders for realistic ledger rows."""

from __future__ import annotations

from datetime import datetime, timezone

from covey.energy.carbon import CarbonIntensity
from covey.energy.ledger import AnswerRecord, AttemptRecord
from covey.types import Energy, EnergyComponent, EnergyMethod

FR = CarbonIntensity(g_per_kwh=55.0, source="ember:FR:2023")


def energy(joules: float, method: EnergyMethod = EnergyMethod.ESTIMATED, name: str = "cpu") -> Energy:
    return Energy.of([EnergyComponent(name=name, joules=joules, marginal_joules=joules / 2, method=method,
                                      source="test", uncertainty=0.4)])


def answer(day: int, agent: str, attempts: list[tuple[str, str, float, int]], overhead: float = 1.0,
           pue: float = 1.0, method: EnergyMethod = EnergyMethod.ESTIMATED) -> AnswerRecord:
    return AnswerRecord(
        time=datetime(2026, 11, day, 12, 0, tzinfo=timezone.utc), session="s1", route=agent, agent=agent,
        attempts=tuple(AttemptRecord(node=n, model=m, quantization="Q4_1", tokens_in=20, tokens_out=t,
                                     seconds=1.5, energy=energy(j, method)) for n, m, j, t in attempts),
        overhead=energy(overhead, method, name="orchestrator-cpu"), carbon=FR, pue=pue)
