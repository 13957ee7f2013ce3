"""Tools an agent may call, with typed results: exact maths, units, dates, document search, a Python sandbox.

Importing this package is light (agent specs import it to validate tool names): the tool modules
load when first named here, and sympy, pint and dateutil on a tool's first call.
"""

from __future__ import annotations

import importlib
from typing import Any

from covey.tools.registry import ENTRY_POINT_GROUP, Tool, ToolOutput, ToolRegistry, known_tool_names, load_plugins
from covey.tools.types import BUILTIN_TOOLS, ToolCall, ToolResult, ToolSpec

_LAZY = {
    "builtin_tools": "builtin", "default_registry": "builtin",
    "AnswerCheck": "questions", "DirectAnswer": "questions", "Question": "questions", "answer_directly": "questions",
    "check_answer": "questions", "read_question": "questions",
    "Sandbox": "sandbox", "SandboxLimits": "sandbox", "SandboxResult": "sandbox",
    "CodeTestReport": "testing", "run_code_tests": "testing",
}

__all__ = [
    "BUILTIN_TOOLS", "ENTRY_POINT_GROUP", "AnswerCheck", "CodeTestReport", "DirectAnswer", "Question", "Sandbox",
    "SandboxLimits", "SandboxResult", "Tool", "ToolCall", "ToolOutput", "ToolRegistry", "ToolResult", "ToolSpec",
    "answer_directly", "builtin_tools", "check_answer", "default_registry", "known_tool_names", "load_plugins",
    "read_question", "run_code_tests",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"covey.tools.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'covey.tools' has no attribute {name!r}")
