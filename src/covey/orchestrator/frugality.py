"""`covey eval frugality FILE.jsonl`: quality against joules, for covey's cascade and for each model alone.

Each task (the format of `covey eval answers`, covey.orchestrator.answer_eval) is answered once through
the routed cascade (policy ``covey``) and once per model of the agents' ladders that some node can run,
pinned the way `Orchestrator.ask(model=...)` pins it (policy ``always:<model>``: that model alone, no
escalation). Every answer is one `Outcome` row: task, route, policy, model, score, tokens in/out, joules
with their range and method, latency, and for the always-model rows the rung's confidence (mean and
lowest token log-probability, whether its check passed), so `covey tune` can replay the cascade for any
acceptance thresholds without running a model (covey.orchestrator.frugality_metrics).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field

from covey.errors import NoCapableNode
from covey.orchestrator.answer_eval import AnswerTask, grade
from covey.orchestrator.results import AnswerResult
from covey.types import Frozen

COVEY = "covey"
ALWAYS = "always:"


def always(model: str) -> str:
    """The policy name of the always-that-model baseline."""
    return f"{ALWAYS}{model}"


class Outcome(Frozen):
    """One answer of one policy to one task: a row of the outcome table (DATA_DIR/frugality.db)."""

    run_id: str
    task: int = Field(description="the task's index in the file")
    prompt: str
    kind: str = Field(description="numeric, code or reference (covey eval answers' kinds)")
    source: str = Field("", description="where the task comes from, when the file says")
    route: str
    agent: str
    policy: str = Field(description="'covey' (the routed cascade) or 'always:<model>'")
    model: str = Field(description="the model whose answer stands ('tool:<name>' when a tool answered)")
    ladder: tuple[str, ...] = Field((), description="the agent's rungs some node could run, smallest first")
    models_called: tuple[str, ...] = Field((), description="the models that ran, in order")
    score: float = Field(description="1/0, or token F1 for reference tasks")
    right: bool
    answer: str
    tokens_in: int = 0
    tokens_out: int = 0
    joules: float = 0.0
    joules_low: float = 0.0
    joules_high: float = 0.0
    method: str = "estimated"
    overhead_joules: float = Field(0.0, description="the orchestrator's own share (routing, tools)")
    overhead_low: float = 0.0
    overhead_high: float = 0.0
    latency_s: float = 0.0
    mean_logprob: float | None = Field(None, description="the rung's mean token log-prob (always-model rows)")
    min_logprob: float | None = Field(None, description="the rung's lowest token log-prob")
    check_ok: bool | None = Field(None, description="the rung's answer was non-empty and passed its checks")
    direct: bool = Field(False, description="a tool answered with no model (every policy answers alike)")
    verified: bool = Field(False, description="a check proved the rung's answer right (the prompt's tests, the "
                                              "tools' value): the cascade accepts it whatever its log-probs")

    @property
    def model_joules(self) -> float:
        return max(self.joules - self.overhead_joules, 0.0)


def outcome(run_id: str, i: int, task: AnswerTask, policy: str, result: AnswerResult, ladder: Sequence[str], *,
            sandbox: Any = None, tolerance: float = 1e-6) -> Outcome:
    """Grade one answer and keep what the replay needs of it."""
    g = grade(task, result, sandbox=sandbox, tolerance=tolerance)
    ran = [a for a in result.attempts if a.outcome in ("answered", "escalated")]
    last = ran[-1] if ran else None
    conf = last.confidence if last is not None else None
    direct = not result.attempts and result.model.startswith("tool:")
    return Outcome(
        run_id=run_id, task=i, prompt=task.prompt, kind=task.kind, source=task.source, route=result.route,
        agent=result.agent, policy=policy, model=result.model, ladder=tuple(ladder),
        models_called=tuple(a.model_id for a in ran), score=g.score, right=g.right, answer=result.text,
        tokens_in=result.prompt_tokens, tokens_out=result.completion_tokens, joules=result.energy.joules,
        joules_low=result.energy.joules_low, joules_high=result.energy.joules_high,
        method=result.energy.method.value, overhead_joules=result.overhead.joules,
        overhead_low=result.overhead.joules_low, overhead_high=result.overhead.joules_high,
        latency_s=result.seconds,
        mean_logprob=conf.mean_logprob if conf is not None else None,
        min_logprob=conf.min_logprob if conf is not None else None,
        check_ok=(conf.check_ok and bool(last.text.strip())) if conf is not None and last is not None else None,
        direct=direct, verified=bool(conf is not None and conf.verified))


def runnable_ladders(orch) -> dict[str, tuple[str, ...]]:
    """Agent -> the rungs of its ladder some node can run now (the cascade climbs these)."""
    from covey.agents.roster import ladder_status

    deps = orch.deps
    return {s.agent: s.runnable for s in ladder_status(deps.agents, deps.pool.nodes(), catalog=deps.catalog,
                                                      policy=deps.policy)}


def baseline_models(ladders: dict[str, tuple[str, ...]], catalog) -> tuple[str, ...]:
    """Every runnable rung of any agent, smallest first (by parameters, then ladder position)."""
    seen: dict[str, int] = {}
    for ladder in ladders.values():
        for pos, m in enumerate(ladder):
            seen[m] = min(seen.get(m, pos), pos)

    def size(m: str) -> tuple[int, int]:
        try:
            return catalog.get(m).params_m, seen[m]
        except Exception:
            return 1 << 30, seen[m]

    return tuple(sorted(seen, key=size))


WARM_UP_PROMPT = "Hello"


async def warm_up(orch, models: Sequence[str]) -> list[str]:
    """Load the router and every model once (one token each, not recorded) before any policy answers, so
    no policy pays a load: the cascade answers each task first, and on the first task it would carry
    the cost of loading every rung it climbs (a minute of wall time, 180 J, seen on a shared machine).
    Returns what could not be warmed (its policy fails on its own later, with its own error)."""
    from covey.errors import CoveyError
    from covey.orchestrator.placement import choose
    from covey.types import GenerateRequest, Message, ModelId, RequestId

    deps = orch.deps
    problems: list[str] = []
    try:
        await asyncio.to_thread(deps.router.classify, WARM_UP_PROMPT, [])
    except Exception as exc:  # the router's own error comes back with the first task
        problems.append(f"router: {exc}")
    for m in models:
        placement, _reasons = choose(deps.pool.nodes(), m, catalog=deps.catalog, max_tokens=1, policy=deps.policy)
        if placement is None:
            problems.append(f"{m}: no node can run it")
            continue
        req = GenerateRequest(request_id=RequestId(f"warm-{uuid.uuid4().hex[:8]}"), model_id=ModelId(m),
                              messages=(Message(role="user", content=WARM_UP_PROMPT),), max_tokens=1)
        try:
            async for _event in deps.pool.generate(placement.node, req):
                pass
        except CoveyError as exc:
            problems.append(f"{m}: {exc.message}")
    return problems


async def run_frugality_eval(orch, tasks: Sequence[AnswerTask], *, models: Sequence[str] | None = None,
                             max_tokens: int | None = None, tolerance: float = 1e-6, run_id: str | None = None,
                             on_row: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Answer every task through the cascade and through each always-model baseline; one Outcome each.

    `models` replaces the baselines (default: every rung some node can run); every one is warmed up
    first (`warm_up`). Raises NoCapableNode when no node can run any model of any agent's ladder.
    """
    ladders = runnable_ladders(orch)
    baselines = tuple(models) if models else baseline_models(ladders, orch.deps.catalog)
    if not baselines:
        raise NoCapableNode("no node can run any model of the agents' ladders, so there is nothing to compare",
                            hint="start a node (`covey node join`) or install the offline models "
                                 "(pip install 'covey[offline-models]')")
    run_id = run_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]
    sandbox = None
    if any(t.kind == "code" for t in tasks):
        from covey.tools.sandbox import Sandbox

        sandbox = Sandbox()
    await warm_up(orch, baselines)
    rows: list[Outcome] = []
    for i, task in enumerate(tasks):
        for policy in (COVEY, *map(always, baselines)):
            pinned = policy.removeprefix(ALWAYS) if policy != COVEY else None
            # A fresh session each: no earlier answer comes along as history.
            result = await orch.ask(task.prompt, session_id=f"frugal-{run_id}-{i}-{policy}", model=pinned,
                                    max_tokens=max_tokens)
            row = await asyncio.to_thread(outcome, run_id, i, task, policy, result, ladders.get(result.agent, ()),
                                          sandbox=sandbox, tolerance=tolerance)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows
