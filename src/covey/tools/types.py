"""Frozen data of tools: what a tool is (name, description, JSON-schema arguments) and what a call returns."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from covey.types import Frozen

TOOL_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"

BUILTIN_TOOLS = ("calculator", "solve", "percent", "convert_units", "date_difference", "weekday", "date_add",
                 "search_documents", "python")
"""Names of the tools covey ships (known without building them, so agent specs validate cheaply)."""


class ToolSpec(Frozen):
    """A tool as a model sees it: the name it calls, what it does, and its arguments as a JSON schema."""

    name: str = Field(pattern=TOOL_NAME_PATTERN, description="lower-case id the model calls, e.g. 'calculator'")
    description: str = Field(min_length=1, description="one or two sentences telling a model when to use it")
    parameters: dict[str, Any] = Field(description="JSON schema (type object) of the arguments")


class ToolCall(Frozen):
    """One call a model (or the graph) asks for."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolResult(Frozen):
    """What a call returned: a JSON-able value, a text for the model, or a clear error; never a traceback."""

    tool: str
    ok: bool
    value: Any = Field(None, description="JSON-able result (a number, a string, a list, a dict)")
    text: str = Field("", description="the result as a short line a model or a user reads")
    error: str = Field("", description="what went wrong and what to do, when ok is false")
    seconds: float = Field(0.0, ge=0.0, description="wall-clock time the call took")
    method: str = Field("", description="how the value was obtained, e.g. 'sympy', 'pint', 'sandbox'")

    def for_model(self) -> str:
        """The line to put back into a model's context."""
        return self.text if self.ok else f"error: {self.error}"
