"""What other nodes claim is checked: impossible speeds, energy and RAM become flagged unknowns."""

from __future__ import annotations

import math

import pytest

from covey import wire
from covey.discovery.directory import NodeDirectory
from covey.orchestrator.placement import choose
from covey.models.catalog import Catalog
from covey.plausibility import checked_info
from covey.types import (
    Battery, Energy, EnergyComponent, EnergyMethod, FinishReason, GenerateFinal, ModelId, ModelOffer, NodeId,
    NodeInfo, Timings,
)

SMOL = "smollm2-135m-instruct-q4_1"


def _node(name: str, tps: float, jpt: float, **kw) -> NodeInfo:
    return NodeInfo(node_id=NodeId(f"id-{name}"), name=name, address=f"{name}:1", tokens_per_second=tps,
                    joules_per_token=jpt, models=(ModelOffer(model_id=ModelId(SMOL), loaded=True,
                                                             tokens_per_second=tps, queue_limit=4),), **kw)


def test_an_honest_snapshot_passes_unchanged() -> None:
    honest = _node("den", 45.0, 0.05, ram_total_bytes=8 << 30, ram_free_bytes=4 << 30, cpu_cores=4,
                   battery=Battery(present=True, on_battery=True, percent=60))
    assert checked_info(honest) is honest


def test_a_boastful_rogue_is_treated_as_unknown_and_named() -> None:
    rogue = checked_info(_node("rogue", 9999.0, 0.0001))
    assert rogue.tokens_per_second == 0.0 and rogue.joules_per_token == 0.0
    assert rogue.models[0].tokens_per_second == 0.0
    assert any("tokens_per_second=9999.0 ignored" in f for f in rogue.flags)
    assert any("joules_per_token=0.0001 ignored" in f for f in rogue.flags)


@pytest.mark.parametrize("fields", [
    {"ram_total_bytes": 1 << 60}, {"ram_free_bytes": 16 << 30, "ram_total_bytes": 8 << 30},
    {"cpu_cores": 10**6}, {"battery": Battery(present=True, percent=250.0)},
])
def test_impossible_hardware_figures_are_dropped(fields) -> None:
    checked = checked_info(_node("odd", 40.0, 0.05, **fields))
    assert checked.flags


def test_the_directory_keeps_the_checked_snapshot_so_placement_is_not_fooled() -> None:
    d = NodeDirectory()
    d.upsert(_node("rogue", 9999.0, 0.0001))
    d.upsert(_node("den", 40.0, 0.02))
    rogue = next(n for n in d.nodes() if n.name == "rogue")
    assert rogue.flags
    placement, _ = choose(d.nodes(), SMOL, catalog=Catalog(), max_tokens=100)
    assert placement is not None and placement.node.name == "den"  # unknown J/token costs the default


@pytest.mark.parametrize("joules", [math.inf, math.nan, -5.0, 1e12])
def test_a_nodes_impossible_energy_becomes_a_flagged_unknown_and_the_answer_survives(joules: float) -> None:
    from covey.v1 import node_pb2 as pb

    final = pb.GenerateEvent(final=pb.Final(
        finish_reason=pb.FINISH_REASON_STOP, prompt_tokens=3, completion_tokens=4,
        timings=pb.Timings(total_ms=10.0),
        energy=pb.Energy(joules=joules, method=pb.ENERGY_METHOD_MEASURED, components=[
            pb.EnergyComponent(name="cpu", joules=joules, method=pb.ENERGY_METHOD_MEASURED)]),
        node_id="n1", model_id=SMOL))
    ev = wire.event_from_pb(final, "10.0.0.5:50551")
    assert isinstance(ev, GenerateFinal) and ev.completion_tokens == 4
    (component,) = ev.energy.components
    assert component.joules == 0.0 and component.method is EnergyMethod.ESTIMATED
    assert "implausible figure from node '10.0.0.5:50551'" in component.source


def test_honest_energy_crosses_unchanged() -> None:
    e = Energy.of([EnergyComponent(name="cpu", joules=12.5, marginal_joules=10.0, method=EnergyMethod.MEASURED,
                                   source="rapl", uncertainty=0.05)])
    final = GenerateFinal(finish_reason=FinishReason.STOP, prompt_tokens=1, completion_tokens=1, timings=Timings(),
                          energy=e, node_id=NodeId("n"), model_id=ModelId(SMOL))
    assert wire.event_from_pb(wire.event_to_pb(final)) == final


def test_a_nodes_asymmetric_range_is_kept_and_an_absurd_one_flagged() -> None:
    from covey.plausibility import checked_component
    from covey.types import EnergyMethod

    ok = checked_component("den-pc", name="cpu", joules=2.0, marginal_joules=1.0, method=EnergyMethod.ESTIMATED,
                           source="per-vcpu", uncertainty=0.6, uncertainty_high=1.9)
    assert ok.uncertainty_high == 1.9 and ok.joules_high == 2.0 * 2.9
    bad = checked_component("den-pc", name="cpu", joules=2.0, marginal_joules=1.0, method=EnergyMethod.ESTIMATED,
                            source="per-vcpu", uncertainty=0.6, uncertainty_high=float("inf"))
    assert bad.joules == 0.0 and "implausible" in bad.source
