"""Nodes seen recently, remembered in DATA_DIR/cache/nodes.json between runs.

Each `covey ask` is a fresh process. Without a memory it would listen to the LAN for the whole
discovery window before every question; with one, the nodes seen on earlier runs are asked
directly (gRPC health check and Info, with a short timeout) and, when one answers, the question
goes ahead at once while discovery keeps browsing in the background. Nodes not seen for
`max_age_s` are forgotten. The file is a cache: unreadable contents are ignored, never an error.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import Field, ValidationError

from covey.types import Frozen, NodeInfo

logger = logging.getLogger(__name__)

FILE_VERSION = 1
REMEMBERED_SOURCES = ("zeroconf",)
"""Only discovered nodes are remembered: static peers and the embedded node are known from settings."""


class RememberedNode(Frozen):
    node_id: str
    name: str
    address: str = Field(min_length=1, description="host:port the node served gRPC on")
    last_seen: float = Field(description="Unix time it was last in the directory")


class NodeMemory:
    """Recently seen nodes by id; `note` while running, `save` once on the way out."""

    def __init__(self, path: Path, *, max_age_s: float, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.max_age_s = max_age_s
        self._clock = clock
        self._nodes: dict[str, RememberedNode] = {n.node_id: n for n in self._read()}
        self._dirty = False

    def recall(self) -> tuple[RememberedNode, ...]:
        """Nodes seen within max_age_s, most recently seen first."""
        oldest = self._clock() - self.max_age_s
        fresh = [n for n in self._nodes.values() if n.last_seen >= oldest]
        return tuple(sorted(fresh, key=lambda n: -n.last_seen))

    def note(self, node: NodeInfo) -> None:
        """Remember a node that is in the directory now (discovered ones only)."""
        if node.source not in REMEMBERED_SOURCES or not node.address:
            return
        self._nodes[node.node_id] = RememberedNode(node_id=node.node_id, name=node.name, address=node.address,
                                                   last_seen=self._clock())
        self._dirty = True

    def save(self) -> None:
        """Write the fresh entries atomically; a failure is logged (the memory is only a speed-up)."""
        if not self._dirty:
            return
        body = {"version": FILE_VERSION, "nodes": [n.model_dump(mode="json") for n in self.recall()]}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(body, indent=1), encoding="utf-8")
            tmp.replace(self.path)
            self._dirty = False
        except OSError as exc:
            logger.warning("could not remember nodes in %s: %s", self.path, exc)
            tmp.unlink(missing_ok=True)

    def _read(self) -> list[RememberedNode]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            logger.warning("ignoring unreadable node memory %s: %s", self.path, exc)
            return []
        if not isinstance(data, dict) or data.get("version") != FILE_VERSION or not isinstance(data.get("nodes"), list):
            return []
        out = []
        for row in data["nodes"]:
            try:
                out.append(RememberedNode.model_validate(row))
            except ValidationError:
                continue
        return out


__all__ = ["NodeMemory", "RememberedNode"]
