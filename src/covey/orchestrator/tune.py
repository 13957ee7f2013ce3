"""`covey tune`: choose each agent's ladder and acceptance thresholds from a stored outcome table, offline.

The cascade is replayed (covey.orchestrator.frugality_metrics.replay) for candidate ladders and
thresholds of each agent. The ladders are the orderings of every non-empty set of the models the run
measured alone on the agent's tasks (only the subsets in size order when more than `REORDER_UP_TO`
were measured): a rung that costs more and answers worse than the one above it on the user's own
tasks is dropped or moved, not paid for on every answer. A threshold matters only where it falls
between two log-probabilities the table holds, so the candidates are the midpoints between
consecutive observed values of the ladder's lower rungs plus one below and one above them all (a
one-rung ladder keeps the thresholds in use: its rung always stands). Each agent's candidates give a
set of (joules, quality) outcomes on its tasks; the sets of all agents are combined exactly (a Pareto
frontier merged agent by agent), and the combination chosen is the cheapest that reaches
`--target-quality`, or the best within `--energy-budget`. Among choices with the same outcome the
ladder in use, then the shorter ladder, then the thresholds closest to those in use win, so tuning
changes no more than it must.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple, cast

from pydantic import Field

from covey.errors import BadRequest
from covey.orchestrator.frugality import COVEY, Outcome, always
from covey.orchestrator.frugality_metrics import (
    Ladders, PolicyPoint, Thresholds, measured, measured_models, models_of, passes, point, replay, rungs, simulate,
    tasks_of,
)
from covey.types import Frozen

DEFAULT = (-1.0, -9.0)
MIN_LADDER_TASKS = 8
"""An agent's ladder is chosen (a rung dropped or moved) only from at least this many of its tasks; with
fewer, only its thresholds. Held out (bench_frugality.py: chosen on 13 tasks, about three per agent,
replayed on the other 12), ladders chosen from so few tasks dropped rungs the held-out tasks needed
(quality 0.311 -> 0.250) while thresholds alone kept it (0.311, 4% fewer joules)."""

REORDER_UP_TO = 3
"""With more measured models than this, ladders keep the models' size order (subsets only): 4 models
already give 64 orderings, each with its own threshold grid."""


class Choice(NamedTuple):
    """One agent's tuned cascade: its thresholds and the measured rungs it climbs, in order."""

    thresholds: tuple[float, float]
    ladder: tuple[str, ...]


class RungFigures(Frozen):
    """One model alone on one agent's tasks (the always-model rows): what a rung costs and earns there."""

    model: str
    quality: float
    joules: float = Field(description="joules per answer")
    dominated_by: str | None = Field(None, description="a model no worse in quality and cheaper, or better and "
                                                       "no dearer, on these tasks")


class AgentChoice(Frozen):
    agent: str
    tasks: int
    before_min_mean_logprob: float
    before_min_token_logprob: float
    min_mean_logprob: float
    min_token_logprob: float
    before_ladder: tuple[str, ...] = Field((), description="the measured rungs the agent climbed, in order")
    ladder: tuple[str, ...] = Field((), description="the measured rungs it climbs after tuning, in order")
    full_ladder: tuple[str, ...] = Field((), description="the ladder written: the tuned rungs, then the agent's "
                                                         "rungs the run did not measure, in their order")
    rungs: tuple[RungFigures, ...] = Field((), description="each measured model alone on this agent's tasks")

    @property
    def thresholds_changed(self) -> bool:
        return (self.min_mean_logprob, self.min_token_logprob) != (self.before_min_mean_logprob,
                                                                   self.before_min_token_logprob)

    @property
    def ladder_changed(self) -> bool:
        return self.ladder != self.before_ladder

    @property
    def changed(self) -> bool:
        return self.thresholds_changed or self.ladder_changed


class TuneOutput(Frozen):
    """`covey tune --json`: the ladders and thresholds chosen from a stored run, expected quality and joules
    before and after."""

    run_id: str
    target_quality: float | None = Field(description="mean score asked for (absolute, 0-1)")
    energy_budget: float | None = Field(description="joules per answer allowed")
    before: PolicyPoint = Field(description="the cascade replayed at the ladders and thresholds in use")
    after: PolicyPoint = Field(description="the cascade replayed at the chosen ladders and thresholds")
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


def ladder_variants(measured: Sequence[str], current: Sequence[str]) -> list[tuple[str, ...]]:
    """The ladders worth replaying over `measured` (smallest first): the one in use, then every non-empty
    subset in every order (in size order only past `REORDER_UP_TO` models), shorter ladders first."""
    out: list[tuple[str, ...]] = [tuple(current)] if current else []
    for k in range(1, len(measured) + 1):
        for subset in itertools.combinations(measured, k):
            for order in (itertools.permutations(subset) if len(measured) <= REORDER_UP_TO else (subset,)):
                if order not in out:
                    out.append(order)
    return out


def agent_options(tasks: Mapping[int, Mapping[str, Outcome]], models: Sequence[str], current: tuple[float, float],
                  ladder: Sequence[str] | None = None, *, tune_ladder: bool = True,
                  ) -> list[tuple[float, float, Choice]]:
    """The frontier of (summed joules, summed score, choice) for one agent's tasks."""
    first = next(iter(tasks.values()))
    current_ladder = tuple(ladder) if ladder is not None else tuple(r.policy.removeprefix("always:")
                                                                    for r in rungs(first, models))
    measured = measured_on_all(tasks, models)
    # A table where no model got any of the agent's tasks right says nothing about which rung is better:
    # the ladder in use is kept (seen held out: both models scored 0 on a few maths tasks, the cheaper
    # one alone was chosen, and the maths answers the other model got right elsewhere were lost).
    evidence = any(r.score > 0 for t in tasks.values() for r in t.values())
    ladders = ladder_variants(measured, current_ladder) if tune_ladder and evidence else [current_ladder]
    options: list[tuple[float, float, object]] = []
    for lad in ladders:
        lower = [r for t in tasks.values() for r in rungs(t, models, lad)[:-1] if r.check_ok and not r.direct]
        grid: list[tuple[float, float]] = [current]
        if lower:
            ms = candidates([r.mean_logprob for r in lower if r.mean_logprob is not None]) or [current[0]]
            ts = candidates([r.min_logprob for r in lower if r.min_logprob is not None]) or [current[1]]
            grid += sorted(itertools.product(ms, ts), key=lambda c: abs(c[0] - current[0]) + abs(c[1] - current[1]))
        for m, t in grid:
            gate = functools.partial(passes, min_mean=m, min_token=t)
            sims = [simulate(task, models, gate, lad) for task in tasks.values()]
            options.append((sum(s.joules for s in sims), sum(s.score for s in sims), Choice((m, t), lad)))
    return _frontier(options)  # type: ignore[return-value]


def measured_on_all(tasks: Mapping[int, Mapping[str, Outcome]], models: Sequence[str]) -> list[str]:
    """The models the run measured alone on every one of these tasks, smallest first."""
    return [m for m in models if all(m in measured_models(t, models) for t in tasks.values())]


def by_agent(tasks: Mapping[int, Mapping[str, Outcome]]) -> dict[str, dict[int, Mapping[str, Outcome]]]:
    out: dict[str, dict[int, Mapping[str, Outcome]]] = {}
    for k, t in tasks.items():
        out.setdefault(next(iter(t.values())).agent, {})[k] = t
    return out


def measured_ladder(ladder: Sequence[str], measured: Sequence[str]) -> tuple[str, ...]:
    """The rungs of `ladder` the run measured, in the ladder's order."""
    return tuple(m for m in ladder if m in measured)


def current_ladders(rows: Sequence[Outcome], ladders: Ladders | None) -> dict[str, tuple[str, ...]]:
    """Each agent's measured rungs in the order its ladder in use climbs them (`ladders`: agent -> its
    whole ladder, e.g. from agents.toml), else in the order the run recorded."""
    tasks = tasks_of(rows)
    models = models_of(rows)
    out: dict[str, tuple[str, ...]] = {}
    for agent, its in by_agent(tasks).items():
        first = next(iter(its.values()))
        recorded = tuple(r.policy.removeprefix("always:") for r in rungs(first, models))
        given = measured_ladder(ladders[agent], measured_models(first, models)) if ladders and agent in ladders else ()
        out[agent] = given or recorded
    return out


def choose(rows: Sequence[Outcome], current: Thresholds, *, target_quality: float | None = None,
           energy_budget: float | None = None, ladders: Ladders | None = None,
           tune_ladders: bool = True, min_ladder_tasks: int = MIN_LADDER_TASKS) -> dict[str, Choice]:
    """Per-agent ladders and thresholds meeting the target (cheapest) or the budget (best); BadRequest if none can.

    `ladders` (agent -> its ladder in use) orders the rungs replayed as "in use"; `tune_ladders=False`
    keeps every ladder as it is and chooses thresholds only, as for an agent with fewer than
    `min_ladder_tasks` tasks in the table."""
    if (target_quality is None) == (energy_budget is None):
        raise BadRequest("give exactly one of --target-quality and --energy-budget")
    tasks = tasks_of(rows)
    models = models_of(rows)
    in_use = current_ladders(rows, ladders)
    combos: list[tuple[float, float, object]] = [(0.0, 0.0, ())]
    for agent, its in by_agent(tasks).items():
        opts = agent_options(its, models, current.get(agent, DEFAULT), in_use[agent],
                             tune_ladder=tune_ladders and len(its) >= min_ladder_tasks)
        combos = _frontier([(j + oj, q + oq, (*c, (agent, ch)))  # type: ignore[misc]
                            for j, q, c in combos for oj, oq, ch in opts])
    n = len(tasks)
    if target_quality is not None:
        able = [c for c in combos if c[1] / n >= target_quality - 1e-9]
        if not able:
            best = max(c[1] for c in combos) / n
            raise BadRequest(f"no ladders or thresholds reach quality {target_quality:.3f} on this run: the replay "
                             f"reaches {best:.3f} at most", hint="ask for a lower --target-quality, or add stronger models")
        pick = min(able, key=lambda c: (c[0], -c[1]))
    else:
        able = [c for c in combos if c[0] / n <= energy_budget + 1e-9]  # type: ignore[operator]
        if not able:
            least = min(c[0] for c in combos) / n
            raise BadRequest(f"no ladders or thresholds keep within {energy_budget:g} J per answer on this run: the "
                             f"cheapest cascade needs {least:.3g} J", hint="allow a larger --energy-budget")
        pick = max(able, key=lambda c: (c[1], -c[0]))
    return dict(cast("tuple[tuple[str, Choice], ...]", pick[2]))  # the (agent, choice) pairs


def rung_figures(its: Mapping[int, Mapping[str, Outcome]], models: Sequence[str]) -> tuple[RungFigures, ...]:
    """Each model measured on all these tasks, alone: quality and joules per answer, and what dominates it."""
    measured = measured_on_all(its, models)
    n = max(len(its), 1)
    figs = [(m, sum(t[always(m)].score for t in its.values()) / n, sum(t[always(m)].joules for t in its.values()) / n)
            for m in measured]

    def beaten(q: float, j: float) -> str | None:
        for m2, q2, j2 in figs:
            if (q2 >= q and j2 < j) or (q2 > q and j2 <= j):
                return m2
        return None

    return tuple(RungFigures(model=m, quality=q, joules=j, dominated_by=beaten(q, j)) for m, q, j in figs)


def full_ladder(tuned: Sequence[str], whole: Sequence[str], measured: Sequence[str]) -> tuple[str, ...]:
    """The ladder to write: the tuned measured rungs, then the rungs of `whole` the run did not measure
    (models no node ran: kept for a bigger device), in their order."""
    return (*tuned, *(m for m in whole if m not in measured and m not in tuned))


SAME = "same"
"""`--target-quality same`: the quality of the cascade in use (replayed), for fewer joules if it can."""


def parse_target(text: str, strongest_quality: float, in_use_quality: float | None = None) -> float:
    """'0.6' (a mean score), '95%' (of always-strongest's quality) or 'same' (the cascade in use's,
    `in_use_quality`) -> a mean score."""
    raw = text.strip()
    if raw.lower() == SAME and in_use_quality is not None:
        return in_use_quality
    try:
        if raw.endswith("%"):
            return float(raw[:-1]) / 100 * strongest_quality
        value = float(raw)
    except ValueError:
        raise BadRequest(f"--target-quality {text!r} is not a number",
                         hint="give a mean score such as 0.6, a share of always-strongest's quality such as 95%, "
                              "or 'same' (the cascade in use's quality, for fewer joules)") from None
    if not 0.0 <= value <= 1.0:
        raise BadRequest(f"--target-quality {value:g} is outside 0-1", hint="a mean score, or a share such as 95%")
    return value


def tune(rows: Sequence[Outcome], current: Thresholds, *, target: str | None = None,
         energy_budget: float | None = None, agents_file: str = "", ladders: Ladders | None = None,
         tune_ladders: bool = True, min_ladder_tasks: int = MIN_LADDER_TASKS) -> TuneOutput:
    """Choose the ladders and thresholds and say what they do, before and after (nothing written here).

    `ladders`: agent -> its whole ladder in use (agents.toml's), so the ladder written keeps the rungs
    this run did not measure."""
    tasks = tasks_of(rows)
    models = models_of(rows)
    if not models:
        raise BadRequest("this run has no always-model answers to replay",
                         hint="run `covey eval frugality` again (it answers with every model alone too)")
    strong = models[-1]
    strongest = measured(tasks, always(strong), strong)
    in_use = current_ladders(rows, ladders)
    before = point("cascade (in use)", "replayed", replay(tasks, models, current, DEFAULT, in_use), strong)
    target_quality = parse_target(target, strongest.quality, before.quality) if target is not None else None
    chosen = choose(rows, current, target_quality=target_quality, energy_budget=energy_budget, ladders=ladders,
                    tune_ladders=tune_ladders, min_ladder_tasks=min_ladder_tasks)
    after_th = {**current, **{a: c.thresholds for a, c in chosen.items()}}
    after_ladders = {a: c.ladder for a, c in chosen.items()}
    choices = []
    for a, its in sorted(by_agent(tasks).items()):
        was = current.get(a, DEFAULT)
        th = after_th.get(a, DEFAULT)
        first = next(iter(its.values()))
        measured_here = measured_models(first, models)
        whole = tuple(ladders[a]) if ladders and a in ladders else in_use[a]
        lad = after_ladders.get(a, in_use[a])
        choices.append(AgentChoice(
            agent=a, tasks=len(its), before_min_mean_logprob=was[0], before_min_token_logprob=was[1],
            min_mean_logprob=th[0], min_token_logprob=th[1], before_ladder=in_use[a], ladder=lad,
            full_ladder=full_ladder(lad, whole, measured_here), rungs=rung_figures(its, models)))
    has_covey = any(COVEY in t for t in tasks.values())
    return TuneOutput(
        run_id=rows[0].run_id, target_quality=target_quality, energy_budget=energy_budget,
        before=before,
        after=point("cascade (tuned)", "replayed", replay(tasks, models, after_th, DEFAULT, after_ladders), strong),
        strongest=strongest, measured=measured(tasks, COVEY, strong) if has_covey else None,
        agents=tuple(choices), agents_file=agents_file, written=False)
