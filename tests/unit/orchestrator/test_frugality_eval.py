"""`covey eval frugality` end to end on 3 tasks with scripted nodes: outcome rows, table, report, tune."""

from __future__ import annotations

import json

import pytest

from covey.errors import NoCapableNode
from covey.models.catalog import Catalog
from covey.orchestrator.answer_eval import read_tasks
from covey.orchestrator.frugality import WARM_UP_PROMPT, run_frugality_eval
from covey.orchestrator.frugality_metrics import report
from covey.orchestrator.graph import Deps
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.outcomes import OutcomeStore, export_routellm
from covey.orchestrator.pool import NodePool
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.tune import tune
from covey.settings import OrchestratorSettings

from fakes import FakeNodeClient, ScriptedRouter, node_info, roster, spec

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"


class ByPrompt(FakeNodeClient):
    """Answers each prompt with its scripted (reply, logprob); records the prompts it saw."""

    def __init__(self, info, script: dict[str, tuple[str, float]], joules: float) -> None:
        super().__init__(info, joules=joules)
        self.script = script
        self.prompts: list[str] = []

    async def generate(self, req):
        prompt = req.messages[-1].content
        self.prompts.append(prompt)
        reply, self.logprob = self.script[prompt]
        words = reply.split(" ")
        self.words = (words[0], *(" " + w for w in words[1:]))
        async for ev in super().generate(req):
            yield ev


async def orchestrator(clients) -> Orchestrator:
    settings = OrchestratorSettings(discover=False, embedded="never", tool_answers=False, program_aided=False,
                                    verify_answers=False)
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    for c in clients:
        await pool.add_client(c)
    agents = roster(spec("k", (SMOL, GEMMA), min_mean_logprob=-1.0))
    return Orchestrator(Deps(router=ScriptedRouter("chat"), pool=pool, catalog=Catalog(), settings=settings,
                             agents=agents))


async def test_three_tasks_through_cascade_and_each_model_then_report_and_tune(tmp_path) -> None:
    f = tmp_path / "tasks.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "two plus two", "answer": 4, "source": "hand"},
        {"prompt": "three squared", "answer": 9, "source": "hand"},
        {"prompt": "capital of France", "reference": "Paris", "source": "hand"}]) + "\n")
    small = ByPrompt(node_info("a", {SMOL: 100}), {
        "two plus two": ("The answer is 4.", -0.1), "three squared": ("The answer is 8.", -3.0),
        "capital of France": ("Paris", -0.1), WARM_UP_PROMPT: ("Hi", -0.1)}, joules=1.0)
    big = ByPrompt(node_info("b", {GEMMA: 50}), {
        "two plus two": ("The answer is 4.", -0.1), "three squared": ("The answer is 9.", -0.2),
        "capital of France": ("Paris", -0.1), WARM_UP_PROMPT: ("Hi", -0.1)}, joules=3.0)
    orch = await orchestrator([small, big])
    seen = []
    rows = await run_frugality_eval(orch, read_tasks(f), max_tokens=16, run_id="t1", on_row=seen.append)
    assert rows == seen and len(rows) == 9
    # Each model and the router were warmed up once before the first task, and no row holds a warm-up.
    assert small.prompts[0] == big.prompts[0] == WARM_UP_PROMPT and small.seen[0].max_tokens == 1
    assert small.prompts.count(WARM_UP_PROMPT) == big.prompts.count(WARM_UP_PROMPT) == 1
    assert orch.deps.router.seen[0][0] == WARM_UP_PROMPT and WARM_UP_PROMPT not in {r.prompt for r in rows}
    assert [r.policy for r in rows[:3]] == ["covey", f"always:{SMOL}", f"always:{GEMMA}"]
    covey = [r for r in rows if r.policy == "covey"]
    assert [r.models_called for r in covey] == [(SMOL,), (SMOL, GEMMA), (SMOL,)]
    assert [r.right for r in covey] == [True, True, True] and covey[1].joules == pytest.approx(4.0)
    smol_row = next(r for r in rows if r.policy == f"always:{SMOL}" and r.task == 1)
    assert (smol_row.mean_logprob, smol_row.check_ok, smol_row.right) == (pytest.approx(-3.0), True, False)
    assert smol_row.source == "hand" and smol_row.ladder == (SMOL, GEMMA) and smol_row.tokens_out == 4
    assert big.prompts.count("three squared") == 2 and small.prompts.count("three squared") == 2

    store = OutcomeStore(tmp_path / "frugality.db")
    store.add(rows)
    rows = store.load()
    store.close()
    rep = report(rows, {"k": (-1.0, -9.0)})
    by = {p.policy: p for p in rep.policies}
    assert (rep.weak, rep.strong) == (SMOL, GEMMA)
    assert by["covey"].quality == 1.0 and by["covey"].joules == pytest.approx(2.0)
    assert by[f"always:{SMOL}"].quality == pytest.approx(2 / 3) and by[f"always:{GEMMA}"].joules == pytest.approx(3.0)
    assert rep.covey_pgr == pytest.approx(1.0) and by["covey"].strong_calls == pytest.approx(1 / 3)
    assert by["oracle"].joules == pytest.approx((1 + 3 + 1) / 3)
    assert rep.replay_agreement == 1.0
    assert rep.savings is not None and rep.savings.share_saved == pytest.approx(1 / 3)
    assert rep.cascade.apgr_calls is not None
    csv_text = export_routellm(rows, tmp_path / "r.csv").read_text()
    assert csv_text.splitlines()[0].startswith(f"prompt,{SMOL},{GEMMA},covey,")

    out = tune(rows, {"k": (-1.0, -9.0)}, target="100%")
    assert out.after.quality == 1.0 and out.after.joules <= out.before.joules


async def test_no_node_can_run_a_model_is_a_clear_error(tmp_path) -> None:
    orch = await orchestrator([])
    f = tmp_path / "t.jsonl"
    f.write_text('{"prompt": "two plus two", "answer": 4}\n')
    with pytest.raises(NoCapableNode, match="no node can run any model") as exc:
        await run_frugality_eval(orch, read_tasks(f))
    assert "covey node join" in str(exc.value)
