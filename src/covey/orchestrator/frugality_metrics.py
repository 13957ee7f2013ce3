"""The figures of `covey eval frugality`, computed from its outcome table alone (no model runs).

* **Replay**: the cascade of one task for any acceptance thresholds, from the always-model rows: climb
  the agent's runnable ladder from its smallest rung; a rung stands when its answer passed its checks
  and its mean and lowest token log-probabilities reach the thresholds (covey.orchestrator.cascade),
  else the next rung runs; the top rung stands whatever it says. Joules add up over the rungs that ran
  (the orchestrator's own share once). What the replay leaves out: the latency budget, and settle's
  fallback to an earlier unsure answer when the top one fails its check.
* **RouteLLM's metrics** (Ong et al. 2024, arXiv:2406.18665; lm-sys/RouteLLM routellm/evals/evaluate.py),
  with the weakest runnable model as RouteLLM's weak model and the strongest as its strong one:
  PGR = (q - q_weak) / (q_strong - q_weak); for a router swept over thresholds (the quantile edges of
  its scores in 10 bins, strong when score >= edge, > at the last edge), AUC = trapezoid of quality over
  the strong-call share, APGR = (AUC - AUC_weak) / (AUC_strong - AUC_weak) over the same range, and
  CPT(x%) = np.interp(q_weak + x (q_strong - q_weak), qualities, call shares), the strong calls needed
  for x% of the gap. covey counts the cost axis twice: in strong-model calls (RouteLLM's) and in joules
  (the policy's joules per answer as a share of always-strongest's).
* The cascade's threshold sweep scores each task by how far its first rung is from being accepted:
  score = -(min(mean - min_mean, lowest - min_token)); a rung whose check failed always climbs.
* **Oracle**: per task the cheapest model (joules) that got it right (the cheapest if none did).
  **Random**: RouteLLM's random router (uniform scores, seed 0) for its APGR, and as a policy point the
  expectation at covey's own strong-call share.
"""

from __future__ import annotations

import functools
import math
import random as _random
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
from pydantic import Field

from covey.orchestrator.frugality import ALWAYS, COVEY, Outcome, always
from covey.types import Frozen

Thresholds = Mapping[str, tuple[float, float]]
"""agent -> (min_mean_logprob, min_token_logprob)."""
Ladders = Mapping[str, Sequence[str]]
"""agent -> the rungs its cascade climbs, in order (models the run measured)."""

BINS = 10  # RouteLLM's --num-results
QUALITY_SHARE = 0.95  # "at >= 95% of always-strongest's quality"


class Sim(Frozen):
    """One task as the replayed cascade answers it."""

    score: float
    right: bool
    joules: float
    joules_low: float
    joules_high: float
    model: str
    models_called: tuple[str, ...]


class PolicyPoint(Frozen):
    policy: str = Field(description="'covey', 'always:<model>', 'oracle', 'random', or a replayed cascade")
    kind: str = Field(description="measured (answers ran), replayed (from the table), oracle or random")
    answers: int
    right: float
    quality: float = Field(description="mean score (1/0, token F1 for reference tasks)")
    joules: float = Field(description="joules per answer")
    joules_low: float
    joules_high: float
    strong_calls: float = Field(description="share of tasks on which the strongest model ran")
    tokens_in: float = 0.0
    tokens_out: float = 0.0
    latency_s: float = 0.0
    pgr: float | None = Field(None, description="performance gap recovered, RouteLLM's PGR")
    pareto: bool = Field(False, description="on the Pareto front of quality against joules")


class CurvePoint(Frozen):
    threshold: float
    strong_calls_pct: float
    joules_pct: float = Field(description="joules per answer as % of always-strongest's")
    joules: float
    quality: float


class RouterMetrics(Frozen):
    name: str
    apgr_calls: float | None = Field(description="APGR with strong-model calls as the cost (RouteLLM's)")
    apgr_joules: float | None = Field(description="APGR with joules as the cost")
    cpt50_calls: float | None = Field(description="% strong calls for 50% of the quality gap (CPT(50%))")
    cpt80_calls: float | None
    cpt50_joules: float | None = Field(description="joules, % of always-strongest's, for 50% of the gap")
    cpt80_joules: float | None
    curve: tuple[CurvePoint, ...]


class Savings(Frozen):
    point: str = Field(description="the cheapest cascade point at >= 95% of always-strongest's quality")
    quality_share: float = Field(description="its quality over always-strongest's")
    joules: float
    joules_saved: float = Field(description="per answer, against always-strongest")
    share_saved: float


# -- the table, by task ---------------------------------------------------------------------------------

def tasks_of(rows: Iterable[Outcome]) -> dict[int, dict[str, Outcome]]:
    out: dict[int, dict[str, Outcome]] = {}
    for o in rows:
        out.setdefault(o.task, {})[o.policy] = o
    return dict(sorted(out.items()))


def models_of(rows: Iterable[Outcome]) -> tuple[str, ...]:
    """The always-model baselines of a run, in the order they were run (smallest first)."""
    return tuple(dict.fromkeys(o.policy.removeprefix(ALWAYS) for o in rows if o.policy.startswith(ALWAYS)))


def passes(row: Outcome, min_mean: float, min_token: float) -> bool:
    """Would the cascade accept this rung's answer at these thresholds (the assess step's rule)?"""
    if row.direct or (row.verified and row.check_ok):
        return True
    if not row.check_ok or row.mean_logprob is None or row.min_logprob is None:
        return False
    return row.mean_logprob >= min_mean and row.min_logprob >= min_token


def margin(row: Outcome, min_mean: float, min_token: float) -> float:
    """How far above its thresholds a rung is (negative: it climbs); -inf when its check failed."""
    if row.direct or (row.verified and row.check_ok):
        return math.inf
    if not row.check_ok or row.mean_logprob is None or row.min_logprob is None:
        return -math.inf
    return min(row.mean_logprob - min_mean, row.min_logprob - min_token)


def rungs(task: Mapping[str, Outcome], models: Sequence[str], ladder: Sequence[str] | None = None) -> list[Outcome]:
    """The always-model rows of a task in the order its agent's cascade climbs them: `ladder` when given
    (a ladder `covey tune` considers), else the ladder the run recorded."""
    if ladder is None:
        any_row = task.get(COVEY) or next(iter(task.values()))
        ladder = [m for m in any_row.ladder if always(m) in task] or [m for m in models if always(m) in task]
    return [task[always(m)] for m in ladder if always(m) in task]


def measured_models(task: Mapping[str, Outcome], models: Sequence[str]) -> tuple[str, ...]:
    """The models answering this task alone in the run (the rungs a replayed ladder may use), smallest first."""
    return tuple(m for m in models if always(m) in task)


def simulate(task: Mapping[str, Outcome], models: Sequence[str],
             accept: Callable[[Outcome], bool], ladder: Sequence[str] | None = None) -> Sim:
    """The cascade of one task with `accept` deciding each rung (the top rung always stands)."""
    climb = rungs(task, models, ladder)
    if not climb:
        raise ValueError("a task without always-model rows cannot be replayed")
    joules = low = high = 0.0
    called: list[str] = []
    for i, row in enumerate(climb):
        if i == 0:
            joules, low, high = row.joules, row.joules_low, row.joules_high
        else:
            joules += row.model_joules
            low += max(row.joules_low - row.overhead_low, 0.0)
            high += max(row.joules_high - row.overhead_high, 0.0)
        if row.direct:
            return Sim(score=row.score, right=row.right, joules=joules, joules_low=low, joules_high=high,
                       model=row.model, models_called=())
        called.append(row.policy.removeprefix(ALWAYS))
        if i == len(climb) - 1 or accept(row):
            return Sim(score=row.score, right=row.right, joules=joules, joules_low=low, joules_high=high,
                       model=row.model, models_called=tuple(called))
    raise AssertionError("unreachable")


def replay(tasks: Mapping[int, Mapping[str, Outcome]], models: Sequence[str], thresholds: Thresholds,
           default: tuple[float, float] = (-1.0, -9.0), ladders: Ladders | None = None) -> list[Sim]:
    """Every task's cascade at per-agent thresholds (and per-agent ladders, where `ladders` names one)."""
    out = []
    ladders = ladders or {}
    for task in tasks.values():
        agent = next(iter(task.values())).agent
        m, t = thresholds.get(agent, default)
        out.append(simulate(task, models, functools.partial(passes, min_mean=m, min_token=t), ladders.get(agent)))
    return out


# -- policy points ---------------------------------------------------------------------------------------

def point(policy: str, kind: str, sims: Sequence[Sim], strong: str, **extra: float) -> PolicyPoint:
    n = max(len(sims), 1)
    return PolicyPoint(policy=policy, kind=kind, answers=len(sims), right=sum(s.right for s in sims),
                       quality=sum(s.score for s in sims) / n, joules=sum(s.joules for s in sims) / n,
                       joules_low=sum(s.joules_low for s in sims) / n, joules_high=sum(s.joules_high for s in sims) / n,
                       strong_calls=sum(strong in s.models_called for s in sims) / n, **extra)


def as_sim(row: Outcome) -> Sim:
    return Sim(score=row.score, right=row.right, joules=row.joules, joules_low=row.joules_low,
               joules_high=row.joules_high, model=row.model, models_called=row.models_called)


def measured(tasks: Mapping[int, Mapping[str, Outcome]], policy: str, strong: str) -> PolicyPoint:
    rows = [t[policy] for t in tasks.values() if policy in t]
    n = max(len(rows), 1)
    return point(policy, "measured", [as_sim(r) for r in rows], strong,
                 tokens_in=sum(r.tokens_in for r in rows) / n, tokens_out=sum(r.tokens_out for r in rows) / n,
                 latency_s=sum(r.latency_s for r in rows) / n)


def oracle(tasks: Mapping[int, Mapping[str, Outcome]], models: Sequence[str], strong: str) -> PolicyPoint:
    """Per task the cheapest model that got it right; the cheapest of all when none did."""
    sims = []
    for task in tasks.values():
        rows = [task[always(m)] for m in models if always(m) in task]
        right = [r for r in rows if r.right]
        sims.append(as_sim(min(right or rows, key=lambda r: r.joules)))
    return point("oracle", "oracle", sims, strong)


def random_at(share: float, weak: PolicyPoint, strong: PolicyPoint) -> PolicyPoint:
    """Routing a share of tasks, picked at random, to the strong model: the expectation."""
    def mix(a: float, b: float) -> float:
        return (1 - share) * a + share * b

    return PolicyPoint(policy="random", kind="random", answers=weak.answers, right=mix(weak.right, strong.right),
                       quality=mix(weak.quality, strong.quality), joules=mix(weak.joules, strong.joules),
                       joules_low=mix(weak.joules_low, strong.joules_low),
                       joules_high=mix(weak.joules_high, strong.joules_high), strong_calls=share)


def pgr(quality: float, q_weak: float, q_strong: float) -> float | None:
    """RouteLLM's performance gap recovered; None when the two models score alike."""
    gap = q_strong - q_weak
    return (quality - q_weak) / gap if abs(gap) > 1e-12 else None


def pareto(points: Sequence[PolicyPoint]) -> set[str]:
    """Policies no other beats on both joules (fewer) and quality (more)."""
    front: set[str] = set()
    best = -math.inf
    for p in sorted(points, key=lambda p: (p.joules, -p.quality)):
        if p.quality > best:
            front.add(p.policy)
            best = p.quality
    return front


# -- RouteLLM's sweep and metrics -------------------------------------------------------------------------

def edges(scores: Sequence[float], bins: int = BINS) -> list[float]:
    """RouteLLM's thresholds: the edges of `bins` equal-count bins of the scores (pd.qcut's retbins)."""
    finite = [s for s in scores if math.isfinite(s)]
    if not finite:
        return [0.0]
    return [float(x) for x in np.quantile(np.asarray(finite, dtype=float), np.linspace(0, 1, bins + 1))]


def sweep(tasks: Mapping[int, Mapping[str, Outcome]], models: Sequence[str], strong: str, j_strong: float,
          score: Callable[[Outcome], float], bins: int = BINS, ladders: Ladders | None = None) -> list[CurvePoint]:
    """Replay the cascade with a rung climbing when its score >= each edge (> at the last edge)."""
    ladders = ladders or {}

    def ladder_of(t: Mapping[str, Outcome]) -> Sequence[str] | None:
        return ladders.get(next(iter(t.values())).agent)

    first = [rungs(t, models, ladder_of(t))[0] for t in tasks.values()]
    cuts = edges([score(r) for r in first], bins)
    curve = []
    for i, cut in enumerate(cuts):
        last = i == len(cuts) - 1

        def accept(row: Outcome, cut=cut, last=last) -> bool:
            s = score(row)
            return not (s > cut if last else s >= cut)

        sims = [simulate(t, models, accept, ladder_of(t)) for t in tasks.values()]
        p = point("sweep", "replayed", sims, strong)
        curve.append(CurvePoint(threshold=cut, strong_calls_pct=100 * p.strong_calls,
                                joules_pct=100 * p.joules / j_strong if j_strong > 0 else 0.0,
                                joules=p.joules, quality=p.quality))
    return curve


def cascade_curve(tasks, models, strong: str, j_strong: float, thresholds: Thresholds,
                  default: tuple[float, float] = (-1.0, -9.0), ladders: Ladders | None = None) -> list[CurvePoint]:
    """The cascade swept by a common shift of every agent's thresholds (on `ladders`, where given)."""
    def score(row: Outcome) -> float:
        m, t = thresholds.get(row.agent, default)
        return -margin(row, m, t)

    return sweep(tasks, models, strong, j_strong, score, ladders=ladders)


def random_curve(tasks, models, weak: str, strong: str, j_strong: float, seed: int = 0) -> list[CurvePoint]:
    """RouteLLM's random router: a uniform score per prompt (seeded), strong when it is >= the edge."""
    rng = _random.Random(seed)
    wins = {k: rng.uniform(0, 1) for k in tasks}
    pair = {k: {always(weak): t[always(weak)], always(strong): t[always(strong)]} for k, t in tasks.items()}
    cuts = edges(list(wins.values()))
    curve = []
    for i, cut in enumerate(cuts):
        last = i == len(cuts) - 1
        sims = [as_sim(pair[k][always(strong)] if (wins[k] > cut if last else wins[k] >= cut)
                       else pair[k][always(weak)]) for k in tasks]
        p = point("random", "random", sims, strong)
        curve.append(CurvePoint(threshold=cut, strong_calls_pct=100 * p.strong_calls,
                                joules_pct=100 * p.joules / j_strong if j_strong > 0 else 0.0,
                                joules=p.joules, quality=p.quality))
    return curve


def _trapezoid(y, x) -> float:
    f = getattr(np, "trapezoid", None) or getattr(np, "trapz", None)  # numpy 2 renamed it
    assert f is not None
    return float(f(y, x))


def apgr(curve: Sequence[CurvePoint], q_weak: float, q_strong: float, axis: str = "strong_calls_pct") -> float | None:
    """RouteLLM's APGR: (AUC - AUC_weak) / (AUC_strong - AUC_weak) over the curve's own range."""
    pts = sorted(curve, key=lambda p: getattr(p, axis))
    xs = np.asarray([getattr(p, axis) for p in pts]) / 100
    ys = np.asarray([p.quality for p in pts])
    weak_auc = _trapezoid(np.full(len(xs), q_weak), xs)
    strong_auc = _trapezoid(np.full(len(xs), q_strong), xs)
    if abs(strong_auc - weak_auc) < 1e-12:
        return None
    return (_trapezoid(ys, xs) - weak_auc) / (strong_auc - weak_auc)


def cpt(curve: Sequence[CurvePoint], share: float, q_weak: float, q_strong: float,
        axis: str = "strong_calls_pct") -> float | None:
    """RouteLLM's CPT(x%): np.interp of the quality target over the curve sorted by cost."""
    if abs(q_strong - q_weak) < 1e-12:
        return None
    pts = sorted(curve, key=lambda p: getattr(p, axis))
    return float(np.interp(share * (q_strong - q_weak) + q_weak, [p.quality for p in pts],
                           [getattr(p, axis) for p in pts]))


def router_metrics(name: str, curve: Sequence[CurvePoint], q_weak: float, q_strong: float) -> RouterMetrics:
    j = "joules_pct"
    return RouterMetrics(
        name=name, apgr_calls=apgr(curve, q_weak, q_strong), apgr_joules=apgr(curve, q_weak, q_strong, j),
        cpt50_calls=cpt(curve, 0.5, q_weak, q_strong), cpt80_calls=cpt(curve, 0.8, q_weak, q_strong),
        cpt50_joules=cpt(curve, 0.5, q_weak, q_strong, j), cpt80_joules=cpt(curve, 0.8, q_weak, q_strong, j),
        curve=tuple(curve))


def savings(candidates: Sequence[tuple[str, float, float]], strong: PolicyPoint,
            share: float = QUALITY_SHARE) -> Savings | None:
    """The cheapest (label, quality, joules) at >= `share` of always-strongest's quality, and what it saves."""
    able = [c for c in candidates if c[1] >= share * strong.quality - 1e-12]
    if not able:
        return None
    label, q, j = min(able, key=lambda c: (c[2], -c[1]))
    return Savings(point=label, quality_share=q / strong.quality if strong.quality > 0 else 1.0, joules=j,
                   joules_saved=strong.joules - j,
                   share_saved=(strong.joules - j) / strong.joules if strong.joules > 0 else 0.0)


# -- the report ------------------------------------------------------------------------------------------

class FrugalityReport(Frozen):
    """`covey eval frugality --json`: quality and joules per policy, RouteLLM's PGR/APGR/CPT, savings."""

    run_id: str
    file: str = ""
    tasks: int
    weak: str = Field(description="the weakest runnable model (RouteLLM's weak model)")
    strong: str = Field(description="the strongest runnable model (always-strongest is the reference)")
    policies: tuple[PolicyPoint, ...]
    quality_gap: float = Field(description="always-strongest's quality minus always-weakest's: PGR and APGR "
                                           "divide by it, so below one task's worth they mean little")
    covey_pgr: float | None = Field(description="PGR of covey's measured cascade")
    quality_share: float = Field(description="covey's quality over always-strongest's")
    joules_share: float = Field(description="covey's joules per answer over always-strongest's")
    cascade: RouterMetrics = Field(description="covey's cascade swept over a shift of its thresholds (replayed)")
    random_router: RouterMetrics = Field(description="RouteLLM's random router between weak and strong")
    savings: Savings | None = Field(description="null when no cascade point reaches 95% of the quality")
    replay_agreement: float = Field(description="share of tasks whose replay at the current thresholds "
                                                "ends on the model the measured cascade ended on")
    outcome_table: str = ""
    routellm_csv: str = ""


def report(rows: Sequence[Outcome], thresholds: Thresholds, *, file: str = "", outcome_table: str = "",
           routellm_csv: str = "") -> FrugalityReport:
    """Every figure of `covey eval frugality` from one run's rows."""
    tasks = tasks_of(rows)
    models = models_of(rows)
    if not models:
        raise ValueError("the run has no always-model rows")
    weak, strong = models[0], models[-1]
    w = measured(tasks, always(weak), strong)
    s = measured(tasks, always(strong), strong)
    points = [measured(tasks, always(m), strong) for m in models]
    has_covey = any(COVEY in t for t in tasks.values())
    c = measured(tasks, COVEY, strong) if has_covey else point(
        "covey (replayed)", "replayed", replay(tasks, models, thresholds), strong)
    points = [c, *points, oracle(tasks, models, strong), random_at(c.strong_calls, w, s)]
    sims = replay(tasks, models, thresholds)
    agree = [sim.model == t[COVEY].model for sim, t in zip(sims, tasks.values()) if COVEY in t]
    curve = cascade_curve(tasks, models, strong, s.joules, thresholds)
    front = pareto([p for p in points if p.kind != "oracle"])
    points = [p.model_copy(update={"pgr": pgr(p.quality, w.quality, s.quality), "pareto": p.policy in front})
              for p in points]
    candidates = [(c.policy, c.quality, c.joules)] + [(f"cascade sweep at {p.threshold:+.3g}", p.quality, p.joules)
                                                      for p in curve]
    return FrugalityReport(
        run_id=rows[0].run_id, file=file, tasks=len(tasks), weak=weak, strong=strong, policies=tuple(points),
        quality_gap=s.quality - w.quality,
        covey_pgr=pgr(c.quality, w.quality, s.quality),
        quality_share=c.quality / s.quality if s.quality > 0 else 1.0,
        joules_share=c.joules / s.joules if s.joules > 0 else 0.0,
        cascade=router_metrics("covey cascade", curve, w.quality, s.quality),
        random_router=router_metrics("random", random_curve(tasks, models, weak, strong, s.joules),
                                     w.quality, s.quality),
        savings=savings(candidates, s), replay_agreement=sum(agree) / len(agree) if agree else 1.0,
        outcome_table=outcome_table, routellm_csv=routellm_csv)
