"""`covey tune`: thresholds chosen by replaying a synthetic outcome table (no model runs)."""

from __future__ import annotations

import pytest

from covey.errors import BadRequest
from covey.orchestrator.frugality import Outcome
from covey.orchestrator.outcomes import OutcomeStore, export_routellm
from covey.orchestrator.tune import candidates, choose, parse_target, tune

W, S = "weak-model", "strong-model"


def rung(task: int, model: str, right: bool, joules: float, mean: float, low: float, agent: str = "a") -> Outcome:
    return Outcome(run_id="r1", task=task, prompt=f"q{task}", kind="numeric", route="math", agent=agent,
                   policy=f"always:{model}", model=model, ladder=(W, S), models_called=(model,), score=float(right),
                   right=right, answer="x", joules=joules, joules_low=joules, joules_high=joules, mean_logprob=mean,
                   min_logprob=low, check_ok=True)


def table() -> list[Outcome]:
    """Weak (1 J) right on 0 and 1; wrong on 2 (low mean) and 3 (one very unlikely token); strong (4 J) always right."""
    weak = [(True, -0.5, -2.0), (True, -0.5, -2.0), (False, -0.8, -3.0), (False, -0.3, -8.0)]
    rows = []
    for i, (right, mean, low) in enumerate(weak):
        rows += [rung(i, W, right, 1.0, mean, low), rung(i, S, True, 4.0, -0.1, -1.0)]
    return rows


def test_candidates_split_every_observed_value() -> None:
    assert candidates([-0.8, -0.5, -0.5, -0.3]) == [-2.0, -0.65, -0.4, -0.25]
    assert candidates([]) == []


def test_target_quality_picks_the_cheapest_thresholds_that_reach_it() -> None:
    out = tune(table(), {"a": (-0.4, -9.0)}, target="100%")
    # in use: only task 3 stands on the weak rung, and it is wrong: 3/4 right at (3 x 5 + 1) / 4 J
    assert (out.before.quality, out.before.joules) == (0.75, 4.0)
    (a,) = out.agents
    assert (a.min_mean_logprob, a.min_token_logprob) == (-0.65, -5.5)
    assert (out.after.quality, out.after.joules) == (1.0, pytest.approx((1 + 1 + 5 + 5) / 4))
    assert out.after.joules < out.strongest.joules and out.after.quality == out.strongest.quality


def test_energy_budget_picks_the_best_quality_within_it_and_unreachable_targets_say_so() -> None:
    chosen = choose(table(), {"a": (-0.4, -9.0)}, energy_budget=1.0)
    m, t = chosen["a"]
    assert m <= -0.8 and t <= -8.0  # everything stands on the weak rung: 1 J, quality 0.5
    with pytest.raises(BadRequest, match="cheapest cascade needs 1 J"):
        choose(table(), {}, energy_budget=0.5)
    with pytest.raises(BadRequest, match="exactly one"):
        choose(table(), {})
    rows = [r.model_copy(update={"score": 0.0, "right": False}) if r.task == 3 else r for r in table()]
    with pytest.raises(BadRequest, match="reaches 0.750 at most"):
        choose(rows, {}, target_quality=0.9)


def test_thresholds_already_right_are_kept() -> None:
    out = tune(table(), {"a": (-0.65, -5.5)}, target="1.0")
    assert not any(a.changed for a in out.agents)


def test_parse_target() -> None:
    assert parse_target("95%", 0.8) == pytest.approx(0.76) and parse_target("0.6", 0.8) == 0.6
    with pytest.raises(BadRequest):
        parse_target("lots", 0.8)
    with pytest.raises(BadRequest):
        parse_target("1.5", 0.8)


def test_outcome_table_round_trips_through_sqlite_and_exports_routellms_csv(tmp_path) -> None:
    import csv

    store = OutcomeStore(tmp_path / "frugality.db")
    store.add(table())
    store.add([r.model_copy(update={"run_id": "r2"}) for r in table()[:2]])
    assert store.runs() == ["r2", "r1"]
    assert store.load("r1") == table()
    assert len(store.load()) == 2
    with pytest.raises(Exception, match="no run 'nope'"):
        store.load("nope")
    store.close()
    path = export_routellm(table(), tmp_path / "out.csv")
    with path.open() as fh:
        got = list(csv.reader(fh))
    assert got[0][:3] == ["prompt", W, S] and f"{W}_response" in got[0] and f"{S}_joules" in got[0]
    assert got[1][:3] == ["q0", "True", "True"] and got[3][:3] == ["q2", "False", "True"]
