"""Placement: which node runs which model for one attempt, and why.

A node qualifies for a model when it serves it, its queue has room, and it is not on a low battery.
Among those, the local device wins when it qualifies (no network, no second device woken up);
otherwise the lowest expected energy for the answer that meets the agent's latency budget, then
the shortest queue. When the local device cannot carry the model, the reason is recorded
("gemma3-270m-q4_k_m needs 343 MB, 'old-laptop' allows 256 MB: delegated to 'den-pc'").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import Field

from covey.models.catalog import Catalog, ModelSpec
from covey.types import MB, Frozen, NodeInfo

DEFAULT_JOULES_PER_TOKEN = 0.5
DEFAULT_TOKENS_PER_SECOND = 10.0


class PlacementPolicy(Frozen):
    min_battery_percent: float = Field(30.0, ge=0, le=100, description="avoid nodes on battery below this")
    ram_margin: float = Field(1.15, ge=1.0, description="a model must fit its RAM need times this")


class Placement(Frozen):
    node: NodeInfo
    model_id: str
    rung: int
    expected_joules: float
    expected_seconds: float
    reason: str = ""


RefusalKind = Literal["not_served", "ram_cap", "ram_free", "busy", "light_only", "low_battery"]
CANNOT_CARRY: frozenset[RefusalKind] = frozenset({"not_served", "ram_cap", "ram_free"})
"""Refusals that say the node does not (or cannot) run the model at all, as opposed to not right now."""


class Refusal(str):
    """Why a node was passed over: the sentence a person reads, plus its `kind` for code to branch on."""

    kind: RefusalKind

    def __new__(cls, text: str, kind: RefusalKind) -> Refusal:
        obj = super().__new__(cls, text)
        obj.kind = kind
        return obj

    @property
    def cannot_carry(self) -> bool:
        return self.kind in CANNOT_CARRY

    @property
    def too_small(self) -> bool:
        """The node lacks the RAM (capped or free): the most telling reason for delegating."""
        return self.kind in ("ram_cap", "ram_free")


def is_local(node: NodeInfo, local_names: frozenset[str] | tuple[str, ...] = ()) -> bool:
    """The device the user is on: the embedded node, or a node named as local in settings."""
    return node.source == "embedded" or node.name in local_names


def why_not(node: NodeInfo, spec: ModelSpec | None, model_id: str, policy: PlacementPolicy) -> Refusal | None:
    """None when the node can run the model now; otherwise a short reason a person can act on."""
    offer = node.offer(model_id)
    need = int((spec.ram_mb if spec else 0) * policy.ram_margin)
    if offer is None:
        cap_mb = node.model_ram_cap_bytes // MB
        if spec is not None and cap_mb and cap_mb < need:
            return Refusal(f"{model_id} needs {need} MB, '{node.name}' allows {cap_mb} MB", "ram_cap")
        free_mb = node.ram_free_bytes // MB
        if spec is not None and node.ram_free_bytes and free_mb < need:
            return Refusal(f"{model_id} needs {need} MB, '{node.name}' has {free_mb} MB free", "ram_free")
        return Refusal(f"'{node.name}' does not serve {model_id}", "not_served")
    if offer.queue_limit and offer.queue_depth >= offer.queue_limit:
        return Refusal(f"'{node.name}' is busy ({offer.queue_depth}/{offer.queue_limit} queued)", "busy")
    if node.light_only and spec is not None and not spec.light:
        return Refusal(f"'{node.name}' takes light work only ({node.note or 'low battery'})", "light_only")
    if node.battery.on_battery and node.battery.percent < policy.min_battery_percent:
        return Refusal(f"'{node.name}' is on battery at {node.battery.percent:.0f}%", "low_battery")
    return None


def _cost(node: NodeInfo, model_id: str, max_tokens: int) -> tuple[float, float]:
    offer = node.offer(model_id)
    tps = (offer.tokens_per_second if offer and offer.tokens_per_second else node.tokens_per_second) \
        or DEFAULT_TOKENS_PER_SECOND
    jpt = node.joules_per_token or DEFAULT_JOULES_PER_TOKEN
    queue = offer.queue_depth if offer else 0
    seconds = max_tokens / tps * (1 + queue)
    return max_tokens * jpt, seconds


def choose(nodes: Sequence[NodeInfo], model_id: str, *, catalog: Catalog, max_tokens: int,
           latency_budget_s: float | None = None, policy: PlacementPolicy = PlacementPolicy(),
           exclude: Iterable[str] = (), local_names: Iterable[str] = (), rung: int = 0
           ) -> tuple[Placement | None, list[Refusal]]:
    """Pick the node for `model_id`. Returns (placement or None, reasons the others were passed over)."""
    try:
        spec: ModelSpec | None = catalog.get(model_id)
    except Exception:
        spec = None
    excluded = set(exclude)
    local_names = frozenset(local_names)
    fit: list[tuple[NodeInfo, float, float]] = []
    reasons: list[Refusal] = []
    local_problems: list[Refusal] = []
    for node in nodes:
        problem = why_not(node, spec, model_id, policy)
        if problem and is_local(node, local_names):
            local_problems.append(problem)
        if node.node_id in excluded:
            continue
        if problem:
            reasons.append(problem)
            continue
        joules, seconds = _cost(node, model_id, max_tokens)
        fit.append((node, joules, seconds))
    if not fit:
        return None, reasons
    in_budget = [f for f in fit if latency_budget_s is None or f[2] <= latency_budget_s] or fit
    local = [f for f in in_budget if is_local(f[0], local_names)]
    pool = local or in_budget
    node, joules, seconds = min(pool, key=lambda f: (f[1], f[0].load, f[2]))
    reason = ""
    # The most telling reason first: a RAM cap or RAM shortage says why this device is too weak.
    local_problems.sort(key=lambda r: not r.too_small)
    if not local and local_problems:
        reason = f"{local_problems[0]}: delegated to '{node.name}'"
    return Placement(node=node, model_id=model_id, rung=rung, expected_joules=joules, expected_seconds=seconds,
                     reason=reason), reasons
