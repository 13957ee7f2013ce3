"""An agent is data: which routes it serves, how it is prompted, and the ladder of models it climbs.

The cascade starts on the first (smallest) model of `ladder` and climbs one rung when the answer
is not accepted: its mean token log-probability is below `accept.min_mean_logprob`, its worst
token is below `accept.min_token_logprob`, or the named `checker` fails. `latency_budget_s` is
the time the whole cascade may take before the best answer so far is returned. `tools` names
the tools (covey.tools) the agent may call.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from covey.agents.checkers import CHECKERS
from covey.errors import UnknownModel
from covey.models.catalog import Catalog
from covey.tools.registry import known_tool_names
from covey.types import Frozen, Sampling

if TYPE_CHECKING:
    from covey.tools.registry import ToolRegistry

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"


class Acceptance(Frozen):
    """When a rung's answer is good enough to stop climbing (natural-log token probabilities)."""

    min_mean_logprob: float = Field(-1.0, le=0.0, description="accept if the mean token logprob is at least this")
    min_token_logprob: float = Field(-9.0, le=0.0, description="accept if no token is less likely than this")


class AgentSpec(Frozen):
    name: str = Field(pattern=NAME_PATTERN, description="lower-case id, e.g. 'coder'")
    description: str = Field("", description="one line shown in `covey agents`")
    routes: tuple[str, ...] = Field(min_length=1, description="router routes this agent answers")
    system_prompt: str = Field(min_length=1)
    ladder: tuple[str, ...] = Field(min_length=1, description="catalog ids or .gguf paths, smallest first")
    sampling: Sampling = Field(default_factory=Sampling)
    max_tokens: int = Field(512, ge=1, le=32768)
    grounded: bool = Field(False, description="answer from the user's documents (retrieval) when they exist")
    accept: Acceptance = Field(default_factory=Acceptance)
    latency_budget_s: float = Field(60.0, gt=0.0, le=4_000_000, allow_inf_nan=False,
                                    description="seconds the whole cascade may take (sent as a uint32 of ms)")
    checker: str | None = Field(None, description=f"one of: {', '.join(CHECKERS)}")
    tools: tuple[str, ...] = Field((), description="tools the agent may call: shipped ones or 'covey.tools' entry points")
    prompt_format: Literal["chat", "translation"] = Field(
        "chat", description="how a request is put to the model: 'chat' (the system prompt, then the user's "
                            "message) or 'translation' (the sentence alone after two example pairs, greedy, one "
                            "line; a request covey cannot read as a translation goes as 'chat')")

    @field_validator("routes")
    @classmethod
    def _route_names(cls, routes: tuple[str, ...]) -> tuple[str, ...]:
        bad = [r for r in routes if not re.match(NAME_PATTERN, r)]
        if bad:
            raise ValueError(f"route names are lower-case letters, digits, '-' or '_': {bad}")
        return routes

    @field_validator("ladder")
    @classmethod
    def _distinct_rungs(cls, ladder: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(ladder)) != len(ladder):
            raise ValueError("a model appears twice in the ladder")
        return ladder

    @field_validator("checker")
    @classmethod
    def _known_checker(cls, checker: str | None) -> str | None:
        if checker is not None and checker not in CHECKERS:
            raise ValueError(f"unknown checker {checker!r}; choose one of {', '.join(CHECKERS)}")
        return checker

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, tools: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(tools)) != len(tools):
            raise ValueError("a tool appears twice")
        known = known_tool_names()
        unknown = [t for t in tools if t not in known]
        if unknown:
            raise ValueError(f"unknown tool(s) {', '.join(map(repr, unknown))}; tools are {', '.join(known)} "
                             "(add your own with a 'covey.tools' entry point)")
        return tools

    def check_tools(self, registry: ToolRegistry) -> None:
        """Raise UnknownTool naming the agent if the registry it will run with lacks one of its tools."""
        registry.check(self.tools, owner=f"agent '{self.name}'")

    def check_ladder(self, catalog: Catalog) -> None:
        """Raise UnknownModel naming the agent if a rung is neither a catalog id nor a .gguf path."""
        known = set(catalog.ids())
        for model in self.ladder:
            if model not in known and not model.endswith(".gguf"):
                raise UnknownModel(f"agent '{self.name}' names unknown model '{model}' in its ladder")

    @property
    def first_model(self) -> str:
        return self.ladder[0]
