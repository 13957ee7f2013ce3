"""Tools as a first-class part of an agent: a `Tool` is a spec (data) plus a function; a `ToolRegistry` holds them.

A tool's arguments are a pydantic model; its JSON schema is what the model sees, and every call is
validated against it before the function runs. A call never raises and never shows a traceback:
bad arguments, a `ToolError` and an unexpected exception all come back as a `ToolResult` with
`ok=False` and a one-line `error`.

Users add tools with a Python entry point in the ``covey.tools`` group, naming either a `Tool` or a
function returning one::

    [project.entry-points."covey.tools"]
    stock_price = "my_pkg.tools:stock_price_tool"

and list them in an agent's ``tools = ["stock_price", "calculator"]`` in agents.toml.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from covey.errors import ConfigError, CoveyError, ToolError, UnknownTool
from covey.tools.types import BUILTIN_TOOLS, ToolCall, ToolResult, ToolSpec

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "covey.tools"


@dataclass(frozen=True)
class ToolOutput:
    """What a tool function returns: the value, the line a model reads, and how it was obtained."""

    value: Any
    text: str
    method: str = ""


ToolFunction = Callable[[Any], ToolOutput]


class Tool:
    """A named function with typed arguments; calling it returns a `ToolResult`, never raises."""

    def __init__(self, name: str, description: str, args: type[BaseModel], run: ToolFunction, *,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        schema = args.model_json_schema()
        schema.pop("title", None)
        self.spec = ToolSpec(name=name, description=description, parameters=schema)
        self.args = args
        self._run = run
        self._clock = clock

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    def __call__(self, arguments: Mapping[str, Any] | None = None, /, **kwargs: Any) -> ToolResult:
        start = self._clock()
        try:
            parsed = self.args.model_validate({**(arguments or {}), **kwargs})
        except ValidationError as exc:
            problems = "; ".join(f"'{'.'.join(str(p) for p in e['loc']) or '-'}': {e['msg']}" for e in exc.errors())
            return self._failed(f"bad arguments for {self.name}: {problems}", start)
        try:
            out = self._run(parsed)
        except CoveyError as exc:
            return self._failed(exc.message, start)
        except Exception as exc:  # a tool bug or a library surprise: a clear line, the traceback in the log
            logger.warning("tool %s failed on %r", self.name, parsed, exc_info=True)
            return self._failed(f"{self.name} failed: {type(exc).__name__}: {exc}", start)
        return ToolResult(tool=self.name, ok=True, value=out.value, text=out.text, method=out.method,
                          seconds=max(0.0, self._clock() - start))

    def _failed(self, error: str, start: float) -> ToolResult:
        return ToolResult(tool=self.name, ok=False, error=error, seconds=max(0.0, self._clock() - start))


class ToolRegistry:
    """Tools by name; immutable, `with_tools` returns a new registry (a later tool replaces one of its name)."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self._tools[tool.name] = tool

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownTool(f"no tool named '{name}'; tools are {', '.join(self._tools) or 'none'}") from None

    def specs(self, names: Iterable[str] | None = None) -> tuple[ToolSpec, ...]:
        """The specs to show a model: all tools, or those an agent names (in its order)."""
        return tuple(self.get(n).spec for n in (self._tools if names is None else names))

    def call(self, call: ToolCall) -> ToolResult:
        """Run one call; an unknown tool is a failed result (a model's typo), not an exception."""
        if call.name not in self._tools:
            return ToolResult(tool=call.name, ok=False,
                              error=f"no tool named '{call.name}'; use one of {', '.join(self._tools)}")
        return self._tools[call.name](call.arguments)

    def with_tools(self, tools: Iterable[Tool]) -> ToolRegistry:
        return ToolRegistry([*self, *tools])

    def check(self, names: Iterable[str], *, owner: str = "agent") -> None:
        """Raise UnknownTool naming `owner` if one of `names` is not in this registry."""
        for name in names:
            if name not in self._tools:
                raise UnknownTool(f"{owner} names unknown tool '{name}'; tools are {', '.join(self._tools)}")


def plugin_entry_points() -> tuple[EntryPoint, ...]:
    """The installed ``covey.tools`` entry points (not loaded)."""
    return tuple(entry_points(group=ENTRY_POINT_GROUP))


def require(module: str, package: str | None = None) -> Any:
    """Import a tool's library, or a ToolError saying which install brings it (tools live in the orchestrator extra)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ToolError(f"this tool needs {package or module}, which is not installed here; "
                        "install covey with the orchestrator extra: pip install 'covey[orchestrator]'") from None


@functools.lru_cache(maxsize=1)
def known_tool_names() -> tuple[str, ...]:
    """Shipped tool names plus installed entry-point names, without loading any plugin (cached; cache_clear())."""
    return tuple(dict.fromkeys((*BUILTIN_TOOLS, *(point.name for point in plugin_entry_points()))))


def load_plugins(points: Iterable[EntryPoint] | None = None) -> tuple[Tool, ...]:
    """Load the user's tools from entry points; a broken plugin is a ConfigError naming it."""
    tools = []
    for point in plugin_entry_points() if points is None else points:
        label = f"entry point '{point.name} = {point.value}' (group {ENTRY_POINT_GROUP})"
        try:
            obj = point.load()
            tool = obj if isinstance(obj, Tool) else obj()
        except Exception as exc:
            raise ConfigError(f"cannot load tool {label}: {type(exc).__name__}: {exc}",
                              hint="fix or uninstall the package that provides it") from exc
        if not isinstance(tool, Tool):
            raise ConfigError(f"tool {label} gave {type(tool).__name__}, not a covey.tools.Tool",
                              hint="point the entry point at a Tool or a function returning one")
        if tool.name != point.name:
            raise ConfigError(f"tool {label} is named '{tool.name}'",
                              hint="give the entry point the same name as the tool")
        tools.append(tool)
    return tuple(tools)

