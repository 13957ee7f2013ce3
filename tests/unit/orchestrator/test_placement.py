"""placement.choose and why_not on hand-built node snapshots: who qualifies, who wins, and why."""

from __future__ import annotations

from covey.models.catalog import Catalog
from covey.orchestrator.placement import PlacementPolicy, choose, is_local, why_not
from covey.types import Battery

from fakes import node_info

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"
CATALOG = Catalog()


def test_a_node_that_serves_the_model_with_room_qualifies() -> None:
    assert why_not(node_info("den", {SMOL: 50}), CATALOG.get(SMOL), SMOL, PlacementPolicy()) is None


def test_reasons_name_the_node_and_what_to_act_on() -> None:
    policy = PlacementPolicy()
    gemma = CATALOG.get(GEMMA)
    need = int(gemma.ram_mb * policy.ram_margin)
    capped = node_info("old-laptop", {SMOL: 50}, cap_mb=need - 1)
    assert why_not(capped, gemma, GEMMA, policy) == f"{GEMMA} needs {need} MB, 'old-laptop' allows {need - 1} MB"
    assert why_not(node_info("den", {SMOL: 50}), gemma, GEMMA, policy) == f"'den' does not serve {GEMMA}"
    busy = node_info("den", {SMOL: 50}, depth=4, limit=4)
    assert why_not(busy, CATALOG.get(SMOL), SMOL, policy) == "'den' is busy (4/4 queued)"
    low = node_info("phone", {SMOL: 50}, battery=Battery(present=True, on_battery=True, percent=12))
    assert why_not(low, CATALOG.get(SMOL), SMOL, policy) == "'phone' is on battery at 12%"


def test_light_only_nodes_take_light_models_only() -> None:
    light_only = node_info("phone", {SMOL: 50, GEMMA: 20}).model_copy(
        update={"light_only": True, "note": "on battery at 22 % (< 30 %): light work only"})
    smol, gemma = CATALOG.get(SMOL), CATALOG.get(GEMMA)
    assert smol.light and why_not(light_only, smol, SMOL, PlacementPolicy()) is None
    if not gemma.light:
        assert "light work only" in (why_not(light_only, gemma, GEMMA, PlacementPolicy()) or "")


def test_the_lowest_expected_joules_wins_then_the_shorter_queue() -> None:
    frugal = node_info("pi", {SMOL: 20}, jpt=0.01)
    hungry = node_info("gpu-box", {SMOL: 200}, jpt=0.5)
    placement, reasons = choose([hungry, frugal], SMOL, catalog=CATALOG, max_tokens=100)
    assert placement is not None and placement.node.name == "pi" and reasons == []
    assert placement.expected_joules == 100 * 0.01
    idle = node_info("a", {SMOL: 50}, jpt=0.1)
    queued = node_info("b", {SMOL: 50}, jpt=0.1, depth=2)
    placement, _ = choose([queued, idle], SMOL, catalog=CATALOG, max_tokens=100)
    assert placement is not None and placement.node.name == "a"


def test_the_latency_budget_rules_out_slow_nodes_unless_none_meets_it() -> None:
    slow = node_info("pi", {SMOL: 2}, jpt=0.01)
    fast = node_info("gpu-box", {SMOL: 200}, jpt=0.5)
    placement, _ = choose([slow, fast], SMOL, catalog=CATALOG, max_tokens=100, latency_budget_s=5.0)
    assert placement is not None and placement.node.name == "gpu-box"
    placement, _ = choose([slow], SMOL, catalog=CATALOG, max_tokens=100, latency_budget_s=5.0)
    assert placement is not None and placement.node.name == "pi"  # better late than no answer


def test_the_local_device_wins_when_it_qualifies_and_says_why_when_it_delegates() -> None:
    local = node_info("laptop", {SMOL: 20}, jpt=0.9, source="embedded")
    remote = node_info("den-pc", {SMOL: 100, GEMMA: 60}, jpt=0.01)
    assert is_local(local) and not is_local(remote) and is_local(remote, ("den-pc",))
    placement, _ = choose([remote, local], SMOL, catalog=CATALOG, max_tokens=100)
    assert placement is not None and placement.node.name == "laptop" and placement.reason == ""
    placement, reasons = choose([remote, local], GEMMA, catalog=CATALOG, max_tokens=100, rung=1)
    assert placement is not None and placement.node.name == "den-pc" and placement.rung == 1
    assert placement.reason == f"'laptop' does not serve {GEMMA}: delegated to 'den-pc'"
    assert reasons == [f"'laptop' does not serve {GEMMA}"]


def test_a_ram_cap_is_the_reason_given_first_when_delegating() -> None:
    policy = PlacementPolicy()
    need = int(CATALOG.get(GEMMA).ram_mb * policy.ram_margin)
    local = node_info("old-laptop", {SMOL: 20}, cap_mb=200, source="embedded")
    remote = node_info("den-pc", {GEMMA: 60})
    placement, _ = choose([local, remote], GEMMA, catalog=CATALOG, max_tokens=10, policy=policy)
    assert placement is not None
    assert placement.reason == f"{GEMMA} needs {need} MB, 'old-laptop' allows 200 MB: delegated to 'den-pc'"


def test_excluded_nodes_are_skipped_and_nothing_left_gives_the_reasons() -> None:
    a = node_info("a", {SMOL: 50})
    b = node_info("b", {SMOL: 50}, depth=4, limit=4)
    placement, reasons = choose([a, b], SMOL, catalog=CATALOG, max_tokens=10, exclude=[a.node_id])
    assert placement is None and reasons == ["'b' is busy (4/4 queued)"]
    placement, reasons = choose([], SMOL, catalog=CATALOG, max_tokens=10)
    assert placement is None and reasons == []


def test_a_model_outside_the_catalog_is_placed_by_what_nodes_serve() -> None:
    path_model = "/models/custom.gguf"
    placement, _ = choose([node_info("den", {path_model: 30})], path_model, catalog=CATALOG, max_tokens=10)
    assert placement is not None and placement.model_id == path_model
