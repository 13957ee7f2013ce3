"""covey: turn spare devices into one frugal assistant.

The public API, imported lazily so a device node (base install, no torch) pays only for what it uses:

    from covey import Settings, build, Orchestrator, AgentSpec, Store
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Settings": "covey.settings",
    "CoveyError": "covey.errors",
    "Orchestrator": "covey.orchestrator.orchestrator",
    "AnswerResult": "covey.orchestrator.results",
    "build": "covey.wiring",
    "AgentSpec": "covey.agents.spec",
    "AgentRoster": "covey.agents.roster",
    "Router": "covey.router.classifier",
    "NodeClient": "covey.orchestrator.client",
    "NodeService": "covey.device_node.service",
    "Store": "covey.rag.store",
    "Energy": "covey.types",
    "NodeInfo": "covey.types",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'covey' has no attribute {name!r}")
