"""`covey tune`: thresholds chosen by replaying a synthetic outcome table (no model runs)."""

from __future__ import annotations

import pytest

from covey.errors import BadRequest
from covey.orchestrator.frugality import Outcome
from covey.orchestrator.outcomes import OutcomeStore, export_routellm
from covey.orchestrator.tune import candidates, choose, ladder_variants, parse_target, tune

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
    (m, t), ladder = chosen["a"]
    # everything stands on the weak rung: 1 J, quality 0.5 (the ladder in use wins the tie with (W,) alone)
    assert m <= -0.8 and t <= -8.0 and ladder == (W, S)
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
    assert parse_target("same", 0.8, 0.5) == 0.5 and parse_target(" Same ", 0.8, 0.25) == 0.25
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


def dominated_table() -> list[Outcome]:
    """Agent 'm': the weak rung is sure of itself, wrong on every task and dearer (6 J) than the strong
    one (4 J), which is right on 3 of 4: the weak rung is dominated."""
    rows = []
    for i in range(4):
        rows += [rung(i, W, False, 6.0, -0.2, -1.0, agent="m"), rung(i, S, i != 3, 4.0, -0.1, -1.0, agent="m")]
    return rows


def test_a_dominated_rung_is_dropped_and_the_unmeasured_rungs_are_kept() -> None:
    out = tune(dominated_table(), {"m": (-1.0, -9.0)}, target="100%", ladders={"m": (W, S, "big-model")},
               min_ladder_tasks=4)
    (a,) = out.agents
    assert a.before_ladder == (W, S) and a.ladder == (S,) and a.ladder_changed
    assert a.full_ladder == (S, "big-model")
    assert [(r.model, r.dominated_by) for r in a.rungs] == [(W, S), (S, None)]
    # in use, the sure weak rung stands on every task: quality 0 at 6 J; tuned, the strong rung alone
    assert (out.before.quality, out.before.joules) == (0.0, 6.0)
    assert (out.after.quality, out.after.joules) == (0.75, 4.0)
    assert out.after.quality == out.strongest.quality and out.after.joules == out.strongest.joules
    # thresholds alone can only make the weak rung climb every time: the same quality, both rungs paid
    kept = tune(dominated_table(), {"m": (-1.0, -9.0)}, target="100%", ladders={"m": (W, S, "big-model")},
                tune_ladders=False)
    (k,) = kept.agents
    assert k.ladder == (W, S) and not k.ladder_changed and k.thresholds_changed
    assert (kept.after.quality, kept.after.joules) == (0.75, 10.0)


def test_same_quality_for_fewer_joules() -> None:
    # in use: the sure weak rung stands, quality 0 at 6 J; 'same' keeps quality 0 at the least cost: the
    # strong rung alone (4 J) is right on 3 tasks, so more than the same quality for fewer joules
    out = tune(dominated_table(), {"m": (-1.0, -9.0)}, target="same", ladders={"m": (W, S)}, min_ladder_tasks=4)
    assert out.target_quality == 0.0 and out.agents[0].ladder == (S,)
    assert (out.after.quality, out.after.joules) == (0.75, 4.0)


def test_a_rung_worth_its_joules_keeps_its_place() -> None:
    out = tune(table(), {"a": (-0.4, -9.0)}, target="100%", ladders={"a": (W, S)})
    (a,) = out.agents
    assert a.ladder == (W, S) and not a.ladder_changed and a.full_ladder == (W, S)


def test_ladder_variants_reorder_small_sets_and_keep_size_order_beyond() -> None:
    assert ladder_variants([W, S], [W, S]) == [(W, S), (W,), (S,), (S, W)]
    assert ladder_variants([W, S], [S]) == [(S,), (W,), (W, S), (S, W)]
    four = ladder_variants(["a", "b", "c", "d"], ["a", "b", "c", "d"])
    assert len(four) == 15 and all(list(v) == sorted(v) for v in four)


async def test_a_tuned_ladder_written_to_agents_toml_is_the_one_the_cascade_climbs(tmp_path) -> None:
    from fakes import FakeNodeClient, ScriptedRouter, node_info

    from covey.agents import default_roster, load_agents
    from covey.agents.overrides import set_acceptance
    from covey.agents.specialists import GEMMA, QWEN_05, SMOL, SPECIALISTS
    from covey.models.catalog import Catalog
    from covey.orchestrator.client import GrpcNodeClient
    from covey.orchestrator.graph import Deps
    from covey.orchestrator.orchestrator import Orchestrator
    from covey.orchestrator.pool import NodePool
    from covey.settings import OrchestratorSettings

    path = tmp_path / "agents.toml"
    set_acceptance(path, {"translator": (-0.9, -9.0)}, ladders={"translator": (GEMMA, QWEN_05)}, validate=load_agents)
    roster = default_roster(path)
    shipped = next(a for a in SPECIALISTS if a.name == "translator")
    translator = roster.get("translator")
    assert translator.ladder == (GEMMA, QWEN_05) and translator.system_prompt == shipped.system_prompt
    assert translator.routes == shipped.routes
    small = FakeNodeClient(node_info("a", {SMOL: 100}), words=("Bonjour",), logprob=-0.1)
    big = FakeNodeClient(node_info("b", {GEMMA: 50}), words=("Bonjour", " mon ami"), logprob=-0.1)
    settings = OrchestratorSettings(discover=False, embedded="never")
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    for c in (small, big):
        await pool.add_client(c)
    orch = Orchestrator(Deps(router=ScriptedRouter("translate"), pool=pool, catalog=Catalog(), settings=settings,
                             agents=roster))
    result = await orch.ask("Translate into French: good morning, my friend", session_id="s")
    assert result.agent == "translator" and result.model == GEMMA
    assert small.seen == [] and len(big.seen) == 1


def test_a_ladder_is_kept_when_no_model_got_any_of_its_tasks_right() -> None:
    # both rungs wrong everywhere: quality ties at 0, so the table cannot say the strong rung is not needed
    # (the weak rung is unsure, so the ladder in use climbs and pays both; the weak one alone would be cheaper)
    rows = [rung(i, m, False, j, -3.0, -9.5) for i in range(4) for m, j in ((W, 1.0), (S, 4.0))]
    out = tune(rows, {"a": (-1.0, -9.0)}, target="same", ladders={"a": (W, S)}, min_ladder_tasks=4)
    (a,) = out.agents
    assert a.ladder == (W, S) and not a.ladder_changed


def test_a_ladder_is_chosen_only_from_enough_of_the_agents_tasks() -> None:
    # the dominated weak rung of four tasks is dropped when four are enough, kept (thresholds only) by default
    assert tune(dominated_table(), {"m": (-1.0, -9.0)}, target="same", ladders={"m": (W, S)},
                min_ladder_tasks=4).agents[0].ladder == (S,)
    out = tune(dominated_table(), {"m": (-1.0, -9.0)}, target="same", ladders={"m": (W, S)})
    assert out.agents[0].ladder == (W, S) and not out.agents[0].ladder_changed
