"""Load on three real node processes on 127.0.0.1: a burst of 1,000 concurrent asks, then 200 asks while nodes
are killed (-9), frozen (SIGSTOP) and restarted. Every ask ends answered or with a clear covey error; none is
lost or answered twice (one ledger row per answer); memory stays bounded.

Answers are two tokens long, so the load is on placement, the pool, the streams and the ledger, not on
llama.cpp; asks name their agent and model, so the router does not run.
"""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import psutil

from covey.errors import CoveyError, NoCapableNode, NodeBusy, NodeUnavailable
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.results import AnswerResult

from conftest import QUEUE_LIMIT
from node_procs import BRIEF, SMOLLM, NodeProc, build_orchestrator, ledger_sessions, orchestrator_settings

BURST = 1000
CHAOS = 200
ASK_BOUND_S = 150.0  # every ask ends within this: the brief agent's 120 s budget, the gRPC grace, slack
RSS_GROWTH_MB = 150  # the orchestrator's memory after the burst, over its memory before it


async def ask(orch, session: str, max_tokens: int = 2) -> AnswerResult | BaseException:
    try:
        async with asyncio.timeout(ASK_BOUND_S):
            return await orch.ask(f"Say one word about {session}.", agent=BRIEF, model=SMOLLM,
                                  max_tokens=max_tokens, session_id=session)
    except (CoveyError, TimeoutError) as exc:
        return exc.with_traceback(None)  # the error, not the frames of its graph run (they would count as RSS)


def sort_out(outcomes: list) -> dict[str, list]:
    kinds: dict[str, list] = collections.defaultdict(list)
    for o in outcomes:
        if isinstance(o, AnswerResult):
            kinds["answered"].append(o)
        elif isinstance(o, NodeBusy):
            kinds["busy"].append(o)
        elif isinstance(o, (NoCapableNode, NodeUnavailable)):
            kinds["failed"].append(o)
        else:
            kinds["other"].append(o)
    return kinds


async def queue_depths(nodes: list[NodeProc]) -> list[int]:
    out = []
    for n in nodes:
        client = GrpcNodeClient(n.address)
        try:
            info = await client.info()
        finally:
            await client.close()
        out.append(sum(m.queue_depth for m in info.models))
    return out


async def until_busy(node: NodeProc, timeout: float = 30.0) -> None:
    """Wait until the node holds at least one answer (running or queued)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if (await queue_depths([node]))[0]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{node.name} never got an answer to hold")


async def test_a_thousand_concurrent_asks_are_each_answered_or_refused_once(tmp_path: Path, trio) -> None:
    settings = orchestrator_settings(tmp_path / "orch", trio)
    orch, router = await build_orchestrator(settings, 3)
    me = psutil.Process()
    try:
        warm = [await ask(orch, f"warm-{i}") for i in range(3)]  # channels open, lazy imports done
        assert all(isinstance(w, AnswerResult) for w in warm), warm
        rss_before = me.memory_info().rss / 2**20
        outcomes = await asyncio.gather(*(ask(orch, f"load-{i}") for i in range(BURST)))
        rss_after = me.memory_info().rss / 2**20
        leftover = [o.queue_depth for n in orch.deps.pool.nodes() for o in n.models]
    finally:
        await orch.close()
    kinds = sort_out(outcomes)
    assert kinds["other"] == [] and kinds["failed"] == [], (kinds["other"] + kinds["failed"])[:3]
    answered, busy = kinds["answered"], kinds["busy"]
    assert len(answered) + len(busy) == BURST
    # The whole cluster's capacity is used: every node filled its queue before anyone was refused.
    assert len(answered) >= 3 * QUEUE_LIMIT, len(answered)
    assert {a.node for a in answered} == {"ash", "birch", "cedar"}
    assert all(a.text and a.completion_tokens for a in answered)
    assert all("busy" in str(b) and "retry" in b.hint for b in busy)
    # None lost, none twice: one ledger row per answer, for exactly the asks that were answered.
    rows = ledger_sessions(settings)
    assert len(rows) == len(set(rows)) == len(answered) + len(warm)
    assert set(rows) == {a.session_id for a in answered} | {f"warm-{i}" for i in range(3)}
    assert leftover == [0, 0, 0]  # nothing still counted in flight or reserved
    assert await queue_depths(trio) == [0, 0, 0]  # nor held on the nodes
    assert rss_after - rss_before < RSS_GROWTH_MB, (rss_before, rss_after)
    assert router.seen == []


async def test_two_hundred_asks_under_kill_freeze_and_restart_each_end_once(tmp_path: Path, trio) -> None:
    ash, birch, cedar = trio
    settings = orchestrator_settings(tmp_path / "orch", trio, stream_idle_s=2.0)
    orch, _ = await build_orchestrator(settings, 3)

    async def faults() -> None:
        await until_busy(ash)
        ash.kill()  # kill -9 with answers in flight
        await until_busy(birch)
        birch.pause()  # frozen with answers in flight
        ash.restart()  # back on the same port and data dir (the same node id) while birch is frozen
        await asyncio.to_thread(ash.ready)
        await asyncio.sleep(3.0)
        birch.resume()

    async def wave(i: int) -> list:
        await asyncio.sleep(i * 0.2)  # 40 waves of 5 over eight seconds
        return await asyncio.gather(*(ask(orch, f"chaos-{i}-{j}", max_tokens=16) for j in range(5)))

    try:
        chaos = asyncio.create_task(faults())
        waves = await asyncio.gather(*(wave(i) for i in range(CHAOS // 5)))
        await chaos
        back = await orch.deps.pool.wait_for_nodes(30.0, want=3)
        after = [await ask(orch, f"after-{i}") for i in range(3)]
    finally:
        await orch.close()
    outcomes = [o for w in waves for o in w]
    assert len(outcomes) == CHAOS
    kinds = sort_out(outcomes)
    assert kinds["other"] == [], kinds["other"][:3]  # no hang past the bound, no unexpected error
    answered = kinds["answered"]
    assert len(answered) + len(kinds["busy"]) + len(kinds["failed"]) == CHAOS
    assert all(str(e) and e.hint for e in kinds["busy"] + kinds["failed"])
    # The faults hit answers in flight: each moved to another node or ended with a clear error saying so.
    assert any(a.failed_over for a in answered) or any("went away" in str(e) for e in kinds["failed"] + kinds["busy"])
    assert all(a.text for a in answered)
    rows = ledger_sessions(settings)
    after_ok = [a for a in after if isinstance(a, AnswerResult)]
    assert len(rows) == len(set(rows)) == len(answered) + len(after_ok)
    assert set(rows) == {a.session_id for a in answered + after_ok}
    assert sorted(n.name for n in back) == ["ash", "birch", "cedar"]  # the restarted and the resumed are back
    assert len(after_ok) == 3, after
