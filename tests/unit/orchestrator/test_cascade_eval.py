"""The cascade evaluation tallies escalations, routing and energy per labelled route."""

from __future__ import annotations

import pytest

from covey.orchestrator.cascade_eval import run_cascade_eval
from covey.router.classifier import RouteExample

from test_graph import GEMMA, SMOL, make
from fakes import FakeNodeClient, ScriptedRouter, node_info, roster, spec


async def test_escalation_rate_per_route():
    small = FakeNodeClient(node_info("a", {SMOL: 100}), words=("um",), logprob=-4.0, joules=1.0)
    big = FakeNodeClient(node_info("b", {GEMMA: 50}), words=("ok",), logprob=-0.1, joules=3.0)
    orch = await make([small, big], router=ScriptedRouter("chat"),
                      agents=roster(spec("k", (SMOL, GEMMA), min_mean_logprob=-1.5)))
    rows = [RouteExample(prompt="hello", route="chat"), RouteExample(prompt="2+2", route="math")]
    stats = {s.route: s for s in await run_cascade_eval(orch, rows)}
    assert stats["chat"].routed_right == 1 and stats["math"].routed_right == 0
    assert stats["chat"].escalation_rate == 1.0
    assert stats["chat"].joules == pytest.approx(4.0)
