"""The documents `--json` prints, one pydantic model per command: the schema in docs/json.md comes from here.

Regenerate the document with ``python -m covey.cli_json > docs/json.md``; a test fails when it is stale
and checks each command's real output against the schema written there.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from covey.models.catalog import ModelSpec
from covey.orchestrator.cascade_eval import RouteCascade
from covey.orchestrator.frugality_metrics import FrugalityReport
from covey.orchestrator.tune import TuneOutput
from covey.discovery.directory import RefusedNode
from covey.orchestrator.results import AnswerResult, Notice
from covey.router.evaluation import RouteReport
from covey.rag.evaluation import EvalReport
from covey.types import Frozen, NodeInfo


class AskOutput(AnswerResult):
    """`covey ask --json`: the answer with its route, node, model, tokens, energy, and the notices seen."""

    notices: tuple[Notice, ...] = Field((), description="delegation, escalation, failover and grounding notices")


class NodesOutput(Frozen):
    """`covey nodes --json`: the node directory."""

    nodes: tuple[NodeInfo, ...]
    refused: tuple[RefusedNode, ...] = ()


class ModelRow(ModelSpec):
    ram_mb_needed: int = Field(description="RAM to load and run with a 2k context (MB)")
    local_path: str | None = Field(description="the .gguf file on this machine, or null")
    get: str | None = Field(description="the command that brings the model here, or null when it is here")


class ModelsOutput(Frozen):
    """`covey models list --json`: the catalog."""

    models: tuple[ModelRow, ...]


class EnergyRow(Frozen):
    key: str
    answers: int
    joules: float
    joules_low: float = Field(description="low end of the joules' range (sum of the components' ranges)")
    joules_high: float
    estimated: bool = Field(description="true when any figure in the row is an estimate")
    tokens_out: int
    j_per_answer: float
    j_per_token: float
    overhead_joules: float = Field(description="the orchestrator's own share (routing, retrieval)")
    graded: int = Field(description="answers an eval run graded")
    correct: int
    j_per_correct: float | None = Field(description="joules of graded answers per correct one; null if none")
    wh: float
    g_co2e: float
    unanswered: int = Field(0, description="answers that were 'I could not get this right'; their joules count")


class CloudComparison(Frozen):
    label: str
    wh_per_query: float
    boundary: str = Field(description="what the published figure counts (device only, datacentre overhead, ...)")
    current: bool = Field(description="false for figures a newer publication superseded")
    ratio: float = Field(description="the cloud figure divided by covey's J/answer")
    ratio_low: float = Field(description="the ratio at the high end of covey's range")
    ratio_high: float
    ratio_per_correct: float | None = Field(description="the cloud figure divided by covey's J per correct answer")
    source: str


class EnergyReportOutput(Frozen):
    """`covey energy report --json`: the ledger grouped by day, agent, node or model."""

    by: str
    since: str | None
    rows: tuple[EnergyRow, ...]
    total: EnergyRow
    measured_share: float = Field(description="fraction of answers measured by a hardware sensor")
    cloud: tuple[CloudComparison, ...] = ()


class Misrouted(Frozen):
    prompt: str
    expected: str
    got: str
    confidence: float
    fallback: bool


class RouteEvalOutput(Frozen):
    """`covey eval route --json`: router accuracy on labelled prompts."""

    file: str
    report: RouteReport
    per_task_ms: float
    encoder: str = Field("", description="how the router's MiniLM ran, e.g. \"onnx-int8 (onnxruntime 1.30.0, 1 "
                         "thread)\" or \"numpy (1 BLAS thread)\" ([router] backend); empty for a router without one")
    misrouted: tuple[Misrouted, ...] = ()
    extra: dict[str, float | int | str] = Field(default_factory=dict)


class CascadeRoute(Frozen):
    route: str
    answers: int
    routed_right: int
    escalated: int
    escalation_rate: float
    unsure_at_top: int = Field(description="low confidence with no stronger model available")
    joules: float
    tokens: int

    @classmethod
    def of(cls, s: RouteCascade) -> CascadeRoute:
        return cls(**s.model_dump(), escalation_rate=s.escalation_rate)


class CascadeEvalOutput(Frozen):
    """`covey eval cascade --json`: answers end to end, per labelled route."""

    file: str
    prompts: int
    routes: tuple[CascadeRoute, ...]
    escalation_rate: float


class RagEvalOutput(Frozen):
    """`covey eval rag --json`: retrieval quality of a collection."""

    collection: str
    report: EvalReport


class Rung(Frozen):
    model: str
    nodes: tuple[str, ...] = Field(description="names of the nodes that could run this model now")


class AgentRow(Frozen):
    name: str
    description: str
    routes: tuple[str, ...]
    serves: tuple[str, ...] = Field(description="the routes this agent answers (the agent defined last wins)")
    ladder: tuple[Rung, ...]
    checker: str | None
    grounded: bool


class AgentsOutput(Frozen):
    """`covey agents --json`: the agents in use and where each rung runs now."""

    agents_file: str
    nodes: tuple[str, ...]
    agents: tuple[AgentRow, ...]


class SettingValue(Frozen):
    value: Any
    source: Literal["default", "file", "env", "flag"]


class ConfigShowOutput(Frozen):
    """`covey config show --json`: the settings in effect and where each value came from."""

    config_file: str | None
    settings: dict[str, SettingValue] = Field(description="dotted key (node.port) -> value and source")


class SettingKey(Frozen):
    key: str
    type: str
    default: Any
    description: str
    env: str = Field(description="the COVEY_* variable that sets it")


class ConfigKeysOutput(Frozen):
    """`covey config keys --json`: every key you can set."""

    keys: tuple[SettingKey, ...]


DOCUMENTS: dict[str, type[Frozen]] = {
    "covey ask --json": AskOutput,
    "covey nodes --json": NodesOutput,
    "covey models list --json": ModelsOutput,
    "covey energy report --json": EnergyReportOutput,
    "covey eval route --json": RouteEvalOutput,
    "covey eval cascade --json": CascadeEvalOutput,
    "covey eval rag --json": RagEvalOutput,
    "covey eval frugality --json": FrugalityReport,
    "covey tune --json": TuneOutput,
    "covey agents --json": AgentsOutput,
    "covey config show --json": ConfigShowOutput,
    "covey config keys --json": ConfigKeysOutput,
}


def dump(model: Frozen) -> dict:
    return model.model_dump(mode="json")


def render_doc() -> str:
    parts = [
        "# covey's JSON output",
        "",
        "Commands given `--json` print one JSON document on stdout and nothing else there (notices, the",
        "summary line and logs stay on stderr; errors exit non-zero with one `error:` line on stderr).",
        "Each schema below is JSON Schema (draft 2020-12) generated from the pydantic model that",
        "prints it (`covey.cli_json`); regenerate with `python -m covey.cli_json > docs/json.md`.",
        "Fields may be added in later versions; none is removed or renamed without a major version.",
        "",
    ]
    for command, model in DOCUMENTS.items():
        parts += [f"## `{command}`", "", (model.__doc__ or "").strip().split(": ", 1)[-1], "",
                  "```json", json.dumps(model.model_json_schema(mode="serialization"), indent=2), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render_doc(), end="")
