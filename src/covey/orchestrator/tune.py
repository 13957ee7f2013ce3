"""`covey tune`: choose each agent's acceptance thresholds from a stored outcome table, offline.

The cascade is replayed (covey.orchestrator.frugality_metrics.replay) for candidate thresholds of each
agent: a threshold matters only where it falls between two log-probabilities the table holds, so the
candidates are the midpoints between consecutive observed values plus one below and one above them
all. Each agent's candidates give a set of (joules, quality) outcomes on its tasks; the sets of all
agents are combined exactly (a Pareto frontier merged agent by agent), and the combination chosen is
the cheapest that reaches `--target-quality`, or the best within `--energy-budget`. Among choices with
the same outcome the one closest to the thresholds in use wins, so tuning changes no more than it must.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import cast

from pydantic import Field

from covey.errors import BadRequest
from covey.orchestrator.frugality import COVEY, Outcome, always
from covey.orchestrator.frugality_metrics import (
    PolicyPoint, Thresholds, measured, models_of, passes, point, replay, rungs, simulate, tasks_of,
)
from covey.types import Frozen

DEFAULT = (-1.0, -9.0)


class AgentChoice(Frozen):
    agent: str
    tasks: int
    before_min_mean_logprob: float
    before_min_token_logprob: float
    min_mean_logprob: float
    min_token_logprob: float

    @property
    def changed(self) -> bool:
        return (self.min_mean_logprob, self.min_token_logprob) != (self.before_min_mean_logprob,
                                                                   self.before_min_token_logprob)


class TuneOutput(Frozen):
    """`covey tune --json`: the thresholds chosen from a stored run, expected quality and joules before and after."""

    run_id: str
    target_quality: float | None = Field(description="mean score asked for (absolute, 0-1)")
    energy_budget: float | None = Field(description="joules per answer allowed")
    before: PolicyPoint = Field(description="the cascade replayed at the thresholds in use")
    after: PolicyPoint = Field(description="the cascade replayed at the chosen thresholds")
    strongest: PolicyPoint = Field(description="always-strongest, measured, for reference")
    measured: PolicyPoint | None = Field(description="covey's cascade as it ran in the eval, when it did")
    agents: tuple[AgentChoice, ...]
    agents_file: str
    written: bool = Field(description="false with --dry-run or when nothing changed")


def candidates(values: Sequence[float]) -> list[float]:
    """Thresholds that split `values` every way they can be split (all <= 0, log-probabilities)."""
    vs = sorted({round(v, 6) for v in values if math.isfinite(v)})
    if not vs:
        return []
    mids = [(a + b) / 2 for a, b in zip(vs, vs[1:])]
    out = [math.floor(vs[0]) - 1.0, *mids, min(vs[-1] + 0.05, 0.0)]
    return sorted({round(c, 4) if _same_side(vs, c, round(c, 4)) else c for c in out})


def _same_side(values: Sequence[float], a: float, b: float) -> bool:
    return all((v >= a) == (v >= b) for v in values)


def _frontier(options: list[tuple[float, float, object]]) -> list[tuple[float, float, object]]:
    """(joules, quality, choice) not beaten on both; the first listed wins ties."""
    out: list[tuple[float, float, object]] = []
    best = -math.inf
    for j, q, c in sorted(options, key=lambda o: (o[0], -o[1])):
        if q > best + 1e-12:
            out.append((j, q, c))
            best = q
    return out


def agent_options(tasks: Mapping[int, Mapping[str, Outcome]], models: Sequence[str],
                  current: tuple[float, float]) -> list[tuple[float, float, tuple[float, float]]]:
    """The frontier of (summed joules, summed score, thresholds) for one agent's tasks."""
    lower = [r for t in tasks.values() for r in rungs(t, models)[:-1] if r.check_ok and not r.direct]
    ms = candidates([r.mean_logprob for r in lower if r.mean_logprob is not None]) or [current[0]]
    ts = candidates([r.min_logprob for r in lower if r.min_logprob is not None]) or [current[1]]
    grid = sorted(itertools.product(ms, ts), key=lambda c: abs(c[0] - current[0]) + abs(c[1] - current[1]))
    grid.insert(0, current)
    options: list[tuple[float, float, object]] = []
    for m, t in grid:
        gate = functools.partial(passes, min_mean=m, min_token=t)
        sims = [simulate(task, models, gate) for task in tasks.values()]
        options.append((sum(s.joules for s in sims), sum(s.score for s in sims), (m, t)))
    return _frontier(options)  # type: ignore[return-value]


def choose(rows: Sequence[Outcome], current: Thresholds, *, target_quality: float | None = None,
           energy_budget: float | None = None) -> dict[str, tuple[float, float]]:
    """Per-agent thresholds meeting the target (cheapest) or the budget (best); BadRequest if none can."""
    if (target_quality is None) == (energy_budget is None):
        raise BadRequest("give exactly one of --target-quality and --energy-budget")
    tasks = tasks_of(rows)
    models = models_of(rows)
    by_agent: dict[str, dict[int, dict[str, Outcome]]] = {}
    for k, t in tasks.items():
        by_agent.setdefault(next(iter(t.values())).agent, {})[k] = t
    combos: list[tuple[float, float, object]] = [(0.0, 0.0, ())]
    for agent, its in by_agent.items():
        opts = agent_options(its, models, current.get(agent, DEFAULT))
        combos = _frontier([(j + oj, q + oq, (*c, (agent, th)))  # type: ignore[misc]
                            for j, q, c in combos for oj, oq, th in opts])
    n = len(tasks)
    if target_quality is not None:
        able = [c for c in combos if c[1] / n >= target_quality - 1e-9]
        if not able:
            best = max(c[1] for c in combos) / n
            raise BadRequest(f"no thresholds reach quality {target_quality:.3f} on this run: the replay reaches "
                             f"{best:.3f} at most", hint="ask for a lower --target-quality, or add stronger models")
        pick = min(able, key=lambda c: (c[0], -c[1]))
    else:
        able = [c for c in combos if c[0] / n <= energy_budget + 1e-9]  # type: ignore[operator]
        if not able:
            least = min(c[0] for c in combos) / n
            raise BadRequest(f"no thresholds keep within {energy_budget:g} J per answer on this run: the cheapest "
                             f"cascade needs {least:.3g} J", hint="allow a larger --energy-budget")
        pick = max(able, key=lambda c: (c[1], -c[0]))
    return dict(cast("tuple[tuple[str, tuple[float, float]], ...]", pick[2]))  # the (agent, thresholds) pairs


def parse_target(text: str, strongest_quality: float) -> float:
    """'0.6' (a mean score) or '95%' (of always-strongest's quality) -> a mean score."""
    raw = text.strip()
    try:
        if raw.endswith("%"):
            return float(raw[:-1]) / 100 * strongest_quality
        value = float(raw)
    except ValueError:
        raise BadRequest(f"--target-quality {text!r} is not a number",
                         hint="give a mean score such as 0.6, or a share of always-strongest's quality such as 95%") from None
    if not 0.0 <= value <= 1.0:
        raise BadRequest(f"--target-quality {value:g} is outside 0-1", hint="a mean score, or a share such as 95%")
    return value


def tune(rows: Sequence[Outcome], current: Thresholds, *, target: str | None = None,
         energy_budget: float | None = None, agents_file: str = "") -> TuneOutput:
    """Choose the thresholds and say what they do, before and after (nothing written here)."""
    tasks = tasks_of(rows)
    models = models_of(rows)
    if not models:
        raise BadRequest("this run has no always-model answers to replay",
                         hint="run `covey eval frugality` again (it answers with every model alone too)")
    strong = models[-1]
    strongest = measured(tasks, always(strong), strong)
    target_quality = parse_target(target, strongest.quality) if target is not None else None
    chosen = choose(rows, current, target_quality=target_quality, energy_budget=energy_budget)
    agents_of: dict[str, int] = {}
    for t in tasks.values():
        a = next(iter(t.values())).agent
        agents_of[a] = agents_of.get(a, 0) + 1
    after_th = {**current, **chosen}
    choices = tuple(AgentChoice(agent=a, tasks=n, before_min_mean_logprob=current.get(a, DEFAULT)[0],
                                before_min_token_logprob=current.get(a, DEFAULT)[1],
                                min_mean_logprob=after_th.get(a, DEFAULT)[0],
                                min_token_logprob=after_th.get(a, DEFAULT)[1])
                    for a, n in sorted(agents_of.items()))
    has_covey = any(COVEY in t for t in tasks.values())
    return TuneOutput(
        run_id=rows[0].run_id, target_quality=target_quality, energy_budget=energy_budget,
        before=point("cascade (thresholds in use)", "replayed", replay(tasks, models, current, DEFAULT), strong),
        after=point("cascade (tuned)", "replayed", replay(tasks, models, after_th, DEFAULT), strong),
        strongest=strongest, measured=measured(tasks, COVEY, strong) if has_covey else None,
        agents=choices, agents_file=agents_file, written=False)
