"""A node frozen mid-answer (SIGSTOP), with real node processes on 127.0.0.1: the orchestrator abandons it
(per-piece idle deadline, or gRPC keepalive when that deadline is far off) and the answer completes on another
node, continuing from the text so far."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path


from covey.orchestrator.results import AnswerResult, Notice, Token

from node_procs import AGENT, SMOLLM, NodeProc, build_orchestrator, ledger_sessions, orchestrator_settings

PROMPT = "Write a long story about a lighthouse keeper and the storms of one winter, in many paragraphs."
GUARD_S = 90.0  # a hang guard for the whole answer, not a speed target


async def freeze_mid_answer(tmp_path: Path, nodes: list[NodeProc], session: str, **orchestrator):
    """Ask with 'ash' preferred (the local device), SIGSTOP it after its first piece; return what came."""
    ash = nodes[0]
    settings = orchestrator_settings(tmp_path / "orch", nodes, local_node="ash", **orchestrator)
    orch, router = await build_orchestrator(settings, len(nodes))
    events: list = []
    frozen_at = failed_over_at = 0.0
    try:
        async with asyncio.timeout(GUARD_S):
            async for ev in orch.stream(PROMPT, agent=AGENT, model=SMOLLM, max_tokens=60, session_id=session):
                events.append(ev)
                if isinstance(ev, Token) and not frozen_at:
                    ash.pause()
                    frozen_at = time.monotonic()
                if isinstance(ev, Notice) and ev.kind == "failover":
                    failed_over_at = time.monotonic()
    finally:
        ash.resume()
        await orch.close()
    assert router.seen == []
    return events, failed_over_at - frozen_at, settings


def check_continued_elsewhere(events: list) -> AnswerResult:
    result = events[-1]
    assert isinstance(result, AnswerResult), events[-3:]
    assert [a.outcome for a in result.attempts] == ["failed_over", "answered"], result.attempts
    first, second = result.attempts
    assert first.node_name == "ash" and second.node_name in ("birch", "cedar") and result.node == second.node_name
    assert first.text and result.text.startswith(first.text) and len(result.text) > len(first.text)
    notices = [e.text for e in events if isinstance(e, Notice) and e.kind == "failover"]
    assert notices and f"'ash' went away; continuing on '{second.node_name}'" in notices[0]
    streamed = "".join(e.text for e in events if isinstance(e, Token))
    assert streamed.strip() == result.text  # the result's text is trimmed (a final newline streamed is dropped)
    return result


async def test_a_node_frozen_mid_answer_is_abandoned_at_the_idle_deadline(tmp_path: Path, trio) -> None:
    """Health checks far off, so the per-piece idle deadline is what notices."""
    events, abandoned_after, settings = await freeze_mid_answer(tmp_path, trio, "idle", stream_idle_s=2.0,
                                                                health_interval_s=600.0)
    result = check_continued_elsewhere(events)
    assert "sent nothing for 2 s" in result.attempts[0].reason
    assert abandoned_after >= 2.0  # not before the deadline the setting gives
    assert ledger_sessions(settings) == ["idle"]


async def test_gRPC_keepalive_abandons_a_frozen_node_when_the_idle_deadline_is_far(tmp_path: Path, trio) -> None:
    """Idle deadline and health checks far off: only the channel's keepalive pings notice the freeze."""
    events, abandoned_after, settings = await freeze_mid_answer(
        tmp_path, trio, "keepalive", stream_idle_s=600.0, health_interval_s=600.0)
    result = check_continued_elsewhere(events)
    reason = result.attempts[0].reason
    assert "unavailable" in reason.lower() or "keepalive" in reason.lower(), reason
    assert abandoned_after < 600.0  # the idle deadline played no part
    assert ledger_sessions(settings) == ["keepalive"]
