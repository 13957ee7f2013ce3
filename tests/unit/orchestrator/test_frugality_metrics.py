"""The metric math of `covey eval frugality` against small tables worked out by hand."""

from __future__ import annotations

import pytest

from covey.orchestrator.frugality import Outcome
from covey.orchestrator.frugality_metrics import (
    CurvePoint, apgr, cascade_curve, cpt, measured, oracle, pareto, pgr, random_at, random_curve, replay, report,
    savings, tasks_of,
)

W, S = "weak-model", "strong-model"


def row(task: int, policy: str, score: float, joules: float, *, mean: float | None = None, low: float | None = None,
        check: bool | None = True, agent: str = "a", overhead: float = 0.0, called: tuple[str, ...] | None = None,
        model: str | None = None) -> Outcome:
    m = model or policy.removeprefix("always:")
    return Outcome(run_id="r1", task=task, prompt=f"q{task}", kind="numeric", route="math", agent=agent,
                   policy=policy, model=m, ladder=(W, S), models_called=called if called is not None else (m,),
                   score=score, right=score >= 1.0, answer=f"a{task}", joules=joules, joules_low=joules / 2,
                   joules_high=joules * 2, overhead_joules=overhead, overhead_low=overhead / 2,
                   overhead_high=overhead * 2, mean_logprob=mean, min_logprob=low, check_ok=check)


def four_tasks() -> list[Outcome]:
    """weak right on 0 and 1, strong right on 0 and 2, nobody on 3; weak 1 J, strong 4 J."""
    return [row(0, f"always:{W}", 1, 1.0, mean=-0.2, low=-2.0), row(0, f"always:{S}", 1, 4.0, mean=-0.1, low=-1.0),
            row(1, f"always:{W}", 1, 1.0, mean=-0.5, low=-2.0), row(1, f"always:{S}", 0, 4.0, mean=-0.1, low=-1.0),
            row(2, f"always:{W}", 0, 1.0, mean=-1.5, low=-3.0), row(2, f"always:{S}", 1, 4.0, mean=-0.1, low=-1.0),
            row(3, f"always:{W}", 0, 1.0, mean=-0.3, low=-2.0, check=False),
            row(3, f"always:{S}", 0, 4.0, mean=-0.1, low=-1.0)]


def test_pgr_apgr_and_cpt_as_routellm_computes_them() -> None:
    # (0 %, 0.2), (50 %, 0.5), (100 %, 0.6): AUC = 0.5*(0.2+0.5)/2 + 0.5*(0.5+0.6)/2 = 0.45
    curve = [CurvePoint(threshold=t, strong_calls_pct=x, joules_pct=x, joules=x, quality=q)
             for t, x, q in ((0.9, 100, 0.6), (0.1, 0, 0.2), (0.5, 50, 0.5))]
    assert pgr(0.5, 0.2, 0.6) == pytest.approx(0.75)
    assert pgr(0.5, 0.4, 0.4) is None
    assert apgr(curve, 0.2, 0.6) == pytest.approx((0.45 - 0.2) / (0.6 - 0.2))
    assert cpt(curve, 0.5, 0.2, 0.6) == pytest.approx(100 / 3)  # 0.4 is 2/3 of the way to 0.5: 33.3 %
    assert cpt(curve, 0.8, 0.2, 0.6) == pytest.approx(60.0)     # 0.52 is 1/5 of the way from 0.5 to 0.6
    # Over a partial range RouteLLM normalises by the same range: the mean PGR between 50 % and 100 %.
    assert apgr(curve[::2], 0.2, 0.6) == pytest.approx(((0.5 + 0.6) / 2 - 0.2) / 0.4)


def test_oracle_random_and_measured_points() -> None:
    tasks = tasks_of(four_tasks())
    o = oracle(tasks, (W, S), S)
    assert (o.quality, o.joules, o.strong_calls) == (0.75, pytest.approx((1 + 1 + 4 + 1) / 4), 0.25)
    w, s = measured(tasks, f"always:{W}", S), measured(tasks, f"always:{S}", S)
    assert (w.quality, w.joules, w.strong_calls, s.strong_calls) == (0.5, 1.0, 0.0, 1.0)
    assert (w.joules_low, w.joules_high) == (0.5, 2.0)
    r = random_at(0.25, w, s)
    assert r.quality == pytest.approx(0.5) and r.joules == pytest.approx(0.75 * 1 + 0.25 * 4)


def test_replay_climbs_on_low_confidence_and_failed_checks_and_counts_joules_once_for_overhead() -> None:
    rows = four_tasks()
    rows[0] = row(0, f"always:{W}", 1, 1.5, mean=-0.2, low=-2.0, overhead=0.5)
    rows[5] = row(2, f"always:{S}", 1, 4.5, mean=-0.1, low=-1.0, overhead=0.5)
    sims = replay(tasks_of(rows), (W, S), {"a": (-1.0, -9.0)})
    assert [s.model for s in sims] == [W, W, S, S]  # task 2: mean -1.5 < -1; task 3: its check failed
    assert [s.score for s in sims] == [1, 1, 1, 0]
    assert sims[0].joules == pytest.approx(1.5)
    assert sims[2].joules == pytest.approx(1.0 + 4.0)  # the strong rung's own overhead is not counted twice
    assert sims[2].models_called == (W, S)
    stricter = replay(tasks_of(rows), (W, S), {"a": (-0.4, -9.0)})
    assert [s.model for s in stricter] == [W, S, S, S]


def test_threshold_sweep_spans_from_only_failed_checks_to_all_climbing() -> None:
    tasks = tasks_of(four_tasks())
    curve = cascade_curve(tasks, (W, S), S, 4.0, {"a": (-1.0, -9.0)})
    assert len(curve) == 11
    calls = [c.strong_calls_pct for c in curve]
    assert calls[0] == 100.0 and calls[-1] == 25.0  # the failed check always climbs
    assert calls == sorted(calls, reverse=True)
    assert curve[0].joules_pct == pytest.approx(100 * 5 / 4)  # everyone pays the weak rung, then the strong


def test_random_router_is_routellms_seeded_sweep() -> None:
    tasks = tasks_of(four_tasks())
    curve = random_curve(tasks, (W, S), W, S, 4.0)
    assert curve[0].strong_calls_pct == 100.0 and curve[-1].strong_calls_pct == 0.0
    assert curve[0].quality == 0.5 and curve[-1].quality == 0.5  # always-strong and always-weak here
    assert random_curve(tasks, (W, S), W, S, 4.0) == curve  # seed 0: the same every run


def test_pareto_and_savings_at_95_percent() -> None:
    tasks = tasks_of(four_tasks())
    w, s = measured(tasks, f"always:{W}", S), measured(tasks, f"always:{S}", S)
    cheap_good = w.model_copy(update={"policy": "x", "quality": 0.5, "joules": 2.0})
    assert pareto([w, s, cheap_good]) == {f"always:{W}"}  # strong: 0.5 at 4 J is beaten by weak's 0.5 at 1 J
    got = savings([("c", 0.48, 2.0), ("d", 0.40, 1.0), ("e", 0.5, 3.0)], s)
    assert got is not None and got.point == "c" and got.joules_saved == pytest.approx(2.0)
    assert got.share_saved == pytest.approx(0.5) and got.quality_share == pytest.approx(0.96)
    assert savings([("d", 0.40, 1.0)], s) is None


def test_report_puts_every_figure_together() -> None:
    rows = four_tasks()
    rows += [row(0, "covey", 1, 1.0, model=W, called=(W,)), row(1, "covey", 1, 1.0, model=W, called=(W,)),
             row(2, "covey", 1, 5.0, model=S, called=(W, S)), row(3, "covey", 0, 5.0, model=S, called=(W, S))]
    rep = report(rows, {"a": (-1.0, -9.0)})
    by = {p.policy: p for p in rep.policies}
    assert set(by) == {"covey", f"always:{W}", f"always:{S}", "oracle", "random"}
    assert by["covey"].quality == 0.75 and by["covey"].joules == 3.0 and by["covey"].strong_calls == 0.5
    assert rep.covey_pgr is None  # weak and strong both score 0.5: no gap to recover
    assert rep.quality_share == pytest.approx(1.5) and rep.joules_share == pytest.approx(0.75)
    assert rep.replay_agreement == 1.0
    assert rep.savings is not None and rep.savings.joules <= 3.0
    assert by["covey"].pareto and by[f"always:{W}"].pareto and not by[f"always:{S}"].pareto


def test_a_verified_rung_stands_in_the_replay_whatever_its_log_probs() -> None:
    # Weak's log-probs are far below the thresholds, but a check proved it right: the replay accepts it, as assess does.
    proven = row(0, f"always:{W}", 1, 1.0, mean=-3.0, low=-12.0).model_copy(update={"verified": True})
    tasks = tasks_of([proven, row(0, f"always:{S}", 1, 4.0, mean=-0.1, low=-1.0)])
    (sim,) = replay(tasks, (W, S), {"a": (-0.5, -4.0)})
    assert sim.models_called == (W,) and sim.joules == 1.0
    unproven = tasks_of([proven.model_copy(update={"verified": False}), row(0, f"always:{S}", 1, 4.0, mean=-0.1,
                                                                             low=-1.0)])
    assert replay(unproven, (W, S), {"a": (-0.5, -4.0)})[0].models_called == (W, S)
