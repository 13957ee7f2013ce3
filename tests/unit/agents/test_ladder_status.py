"""ladder_status: for each agent, which rungs the current nodes can run, and why not (for `covey agents`)."""

from __future__ import annotations

from covey.agents import AgentRoster, AgentSpec, default_roster, ladder_status
from covey.models.catalog import Catalog
from covey.types import ModelOffer, NodeInfo

SMOL, GEMMA, QWEN = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m", "qwen2.5-0.5b-instruct-q4_k_m"


def node(name: str, models: tuple[str, ...], *, cap_mb: int = 0, depth: int = 0) -> NodeInfo:
    return NodeInfo(node_id=f"id-{name}", name=name, address=f"{name}:1",
                    models=tuple(ModelOffer(model_id=m, loaded=True, queue_depth=depth, queue_limit=2) for m in models),
                    ram_total_bytes=8 << 30, ram_free_bytes=4 << 30, model_ram_cap_bytes=cap_mb << 20)


def agent(ladder: tuple[str, ...]) -> AgentRoster:
    return AgentRoster([AgentSpec(name="a", routes=("chat",), system_prompt="hi", ladder=ladder)])


def test_runnable_rungs_name_their_nodes_and_the_others_say_why():
    nodes = [node("laptop", (SMOL,), cap_mb=200), node("den", (SMOL, GEMMA))]
    (status,) = ladder_status(agent((SMOL, GEMMA, QWEN)), nodes, catalog=Catalog())
    assert status.runnable == (SMOL, GEMMA)
    smol, gemma, qwen = status.rungs
    assert smol.nodes == ("laptop", "den") and gemma.nodes == ("den",)
    assert [r.model_id for r in status.skipped] == [QWEN]
    assert qwen.why_not.startswith(f"{QWEN} needs 656 MB, 'laptop' allows 200 MB; no other node serves it; ")
    assert f"on a device with 656 MB to spare: `covey models pull {QWEN}`" in qwen.why_not


def test_a_busy_or_too_small_node_is_the_reason_given():
    (status,) = ladder_status(agent((GEMMA,)), [node("laptop", (), cap_mb=200)], catalog=Catalog())
    assert status.rungs[0].why_not.startswith(f"{GEMMA} needs ") and "'laptop' allows 200 MB" in status.rungs[0].why_not
    (busy,) = ladder_status(agent((SMOL,)), [node("den", (SMOL,), depth=2)], catalog=Catalog())
    assert busy.rungs[0].why_not == "'den' is busy (2/2 queued)"


def test_no_nodes_at_all_and_every_shipped_agent_listed():
    statuses = ladder_status(default_roster(), [], catalog=Catalog())
    assert {s.agent for s in statuses} == {a.name for a in default_roster()}
    for s in statuses:
        assert s.runnable == () and all(r.why_not.startswith("no node is running") for r in s.rungs)
    smol = statuses[0].rungs[0]
    assert smol.model_id == SMOL and "covey node join -m" in smol.why_not  # installed in this test venv
