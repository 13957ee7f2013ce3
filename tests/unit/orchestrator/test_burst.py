"""Bursts spread by free slots: placement counts its own decisions, and a busy refusal moves to another node."""

from __future__ import annotations

import asyncio

import pytest

from covey.errors import CoveyError, NodeBusy
from covey.models.catalog import Catalog
from covey.orchestrator.graph import Deps
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.pool import NodePool
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.results import AnswerResult, Notice
from covey.settings import OrchestratorSettings

from fakes import FakeNodeClient, ScriptedRouter, node_info, roster, spec

SMOL = "smollm2-135m-instruct-q4_1"


class SlotNode(FakeNodeClient):
    """A node with `slots` places: one request more is refused as NodeBusy, as a real node does.

    `advertised` is the queue limit its snapshot claims (a stale or optimistic Info); each stream
    waits for `release` after its first piece so a whole burst is in flight at once."""

    def __init__(self, name: str, slots: int, *, jpt: float, advertised: int | None = None) -> None:
        super().__init__(node_info(name, {SMOL: 50}, jpt=jpt, limit=advertised or slots))
        self.slots = slots
        self.active = 0
        self.most = 0
        self.busy = 0
        self.served = 0
        self.release = asyncio.Event()

    async def generate(self, req):
        if self.active >= self.slots:
            self.busy += 1
            raise NodeBusy(f"model '{req.model_id}' on '{self.info_.name}' has {self.active} requests "
                           f"running or waiting (limit {self.slots})")
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            first = True
            async for ev in super().generate(req):
                yield ev
                if first:
                    first = False
                    await self.release.wait()
            self.served += 1
        finally:
            self.active -= 1


async def _orchestrator(*clients, recorded: list) -> Orchestrator:
    settings = OrchestratorSettings(discover=False, embedded="never")
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    for c in clients:
        await pool.add_client(c)
    deps = Deps(router=ScriptedRouter(), pool=pool, catalog=Catalog(), settings=settings,
                agents=roster(spec("chatter", (SMOL,))), record=recorded.append)
    return Orchestrator(deps)


async def _burst(orch: Orchestrator, n: int, *nodes: SlotNode) -> list[AnswerResult | BaseException]:
    async def one(i: int):
        return await orch.ask(f"question {i}", session_id=f"s{i}")

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    # Every ask is placed and streaming (or has ended) before any stream may finish: a truly concurrent burst.
    for _ in range(1000):
        if sum(node.active for node in nodes) + sum(t.done() for t in tasks) >= n:
            break
        await asyncio.sleep(0.01)
    for node in nodes:
        node.release.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_fifty_concurrent_asks_over_two_nodes_spread_by_free_slots() -> None:
    """The cheap node has 2 slots, the other 2,000: the burst fills the cheap one and spreads the rest."""
    small = SlotNode("small", 2, jpt=0.01)
    big = SlotNode("big", 2000, jpt=0.5)
    recorded: list[AnswerResult] = []
    orch = await _orchestrator(small, big, recorded=recorded)
    out = await _burst(orch, 50, small, big)
    failed = [r for r in out if isinstance(r, BaseException)]
    assert failed == []
    assert small.served == 2 and big.served == 48
    assert small.most == 2 and small.busy == 0  # placement never sent it a third
    assert sorted(r.node for r in out) == ["big"] * 48 + ["small"] * 2
    assert len(recorded) == 50 and len({r.session_id for r in recorded}) == 50
    assert orch.deps.pool.nodes()[0].offer(SMOL).queue_depth == 0  # nothing left reserved
    await orch.close()


async def test_a_busy_refusal_is_retried_on_another_capable_node() -> None:
    """'small' claims 40 slots but has 1: its refusals move to 'big' and never reach the user."""
    small = SlotNode("small", 1, jpt=0.01, advertised=40)
    big = SlotNode("big", 100, jpt=0.5)
    recorded: list[AnswerResult] = []
    orch = await _orchestrator(small, big, recorded=recorded)
    out = await _burst(orch, 20, small, big)
    assert [r for r in out if isinstance(r, BaseException)] == []
    assert small.busy == 19 and small.served == 1 and big.served == 19
    moved = [r for r in out if r.node == "big"]
    assert all(any("'small' is busy; asked 'big'" in n for n in r.notes) for r in moved)
    assert all([a.outcome for a in r.attempts] == ["answered"] for r in out)  # a refusal is no attempt
    assert len(recorded) == 20
    await orch.close()


async def test_the_busy_node_is_avoided_for_the_rest_of_that_answer() -> None:
    small = SlotNode("small", 0, jpt=0.01, advertised=10)
    big = SlotNode("big", 10, jpt=0.5)
    orch = await _orchestrator(small, big, recorded=[])
    big.release.set()
    events = [ev async for ev in orch.stream("hi", session_id="s")]
    result = events[-1]
    assert isinstance(result, AnswerResult) and result.node == "big" and small.busy == 1
    assert any(isinstance(e, Notice) and e.kind == "busy" and "'small' is busy" in e.text for e in events)
    await orch.close()


async def test_when_every_capable_node_is_busy_the_user_is_told_so_with_a_hint() -> None:
    a = SlotNode("a", 0, jpt=0.01, advertised=5)
    b = SlotNode("b", 0, jpt=0.5, advertised=5)
    orch = await _orchestrator(a, b, recorded=[])
    with pytest.raises(NodeBusy) as exc:
        await orch.ask("hi", session_id="s")
    assert a.busy == 1 and b.busy == 1
    msg = str(exc.value)
    assert "all nodes that serve smollm2-135m-instruct-q4_1 are busy" in msg and "'a'" in msg and "'b'" in msg
    assert isinstance(exc.value, CoveyError) and "retry" in exc.value.hint and "covey node join" in exc.value.hint
    await orch.close()


async def test_a_full_cluster_is_refused_at_placement_as_busy_not_as_missing() -> None:
    """Placement itself sees every slot taken (by this orchestrator's own answers): 'busy', not 'no node'."""
    a = SlotNode("a", 1, jpt=0.01)
    recorded: list[AnswerResult] = []
    orch = await _orchestrator(a, recorded=recorded)
    out = await _burst(orch, 3, a)
    answered = [r for r in out if isinstance(r, AnswerResult)]
    refused = [r for r in out if isinstance(r, BaseException)]
    assert len(answered) == 1 and len(refused) == 2 and a.busy == 0
    assert all(isinstance(r, NodeBusy) and "busy" in str(r) and "retry" in r.hint for r in refused)
    assert len(recorded) == 1
    await orch.close()


class OverdueNode(FakeNodeClient):
    """Sends `words`, then outlives the answer's latency budget and fails as the gRPC deadline does."""

    async def generate(self, req):
        from covey.errors import NodeUnavailable
        from covey.types import TokenPiece

        self.seen.append(req)
        for i, w in enumerate(self.words):
            yield TokenPiece(text=w, logprobs=(-0.1,), token_ids=(i,))
        await asyncio.sleep(0.2)
        raise NodeUnavailable(f"node at {self.address} is unavailable (deadline_exceeded: Deadline Exceeded)")


async def _hurried(*clients, recorded: list) -> Orchestrator:
    settings = OrchestratorSettings(discover=False, embedded="never")
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    for c in clients:
        await pool.add_client(c)
    agent = spec("chatter", (SMOL,)).model_copy(update={"latency_budget_s": 0.1})
    deps = Deps(router=ScriptedRouter(), pool=pool, catalog=Catalog(), settings=settings,
                agents=roster(agent), record=recorded.append)
    return Orchestrator(deps)


async def test_a_call_that_outlives_the_budget_ends_with_the_text_so_far_and_keeps_its_node() -> None:
    """No time is left to continue elsewhere; the node is slow, not gone, so its other answers go on."""
    from covey.types import FinishReason

    slow = OverdueNode(node_info("slow", {SMOL: 50}, jpt=0.01), words=("The", " sea"))
    spare = SlotNode("spare", 10, jpt=0.5)
    recorded: list[AnswerResult] = []
    orch = await _hurried(slow, spare, recorded=recorded)
    result = await orch.ask("hi", session_id="s")
    assert result.text == "The sea" and result.node == "slow" and spare.served == 0
    assert [(a.outcome, a.finish) for a in result.attempts] == [("answered", FinishReason.DEADLINE)]
    assert {n.name for n in orch.deps.pool.nodes()} == {"slow", "spare"}
    assert len(recorded) == 1
    await orch.close()


async def test_a_call_that_outlives_the_budget_with_nothing_said_is_a_clear_busy_error() -> None:
    slow = OverdueNode(node_info("slow", {SMOL: 50}, jpt=0.01), words=())
    recorded: list[AnswerResult] = []
    orch = await _hurried(slow, recorded=recorded)
    with pytest.raises(NodeBusy) as exc:
        await orch.ask("hi", session_id="s")
    assert "no answer from 'slow' within agent 'chatter''s latency budget (0.1 s)" in str(exc.value)
    assert "retry" in exc.value.hint and recorded == [] and orch.deps.pool.nodes()[0].name == "slow"
    await orch.close()


async def test_a_failover_with_every_other_node_full_is_a_busy_error_naming_both() -> None:
    dying = FakeNodeClient(node_info("a", {SMOL: 50}, jpt=0.01), words=("The", " sea"), die_after=1)
    full = FakeNodeClient(node_info("b", {SMOL: 50}, jpt=0.5, depth=2, limit=2))
    orch = await _orchestrator(dying, full, recorded=[])
    with pytest.raises(NodeBusy) as exc:
        await orch.ask("hi", session_id="s")
    msg = str(exc.value)
    assert "tried 'a' (each went away mid-answer)" in msg and "'b' is busy (2/2 queued)" in msg
    assert "retry" in exc.value.hint and full.seen == []
    await orch.close()
