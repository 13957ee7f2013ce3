"""A real node (SmolLM2 through llama.cpp, gRPC on 127.0.0.1:0) running on its own thread and event loop.

The node lives on a background loop, like a node in another process, so each test keeps its own
event loop and its own clients, and a test can still look inside the node (slot depth) as data.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest

from covey.device_node.backend import LlamaBackend, RunStats
from covey.device_node.runner import build_node
from covey.device_node.server import NodeServer
from covey.device_node.service import NodeService
from covey.settings import Settings

SMOLLM = "smollm2-135m-instruct-q4_1"
T = TypeVar("T")


class NodeThread:
    """Starts a NodeService + NodeServer on a private loop; `address` is the real 127.0.0.1 port."""

    def __init__(self, data_dir: Path, **node: Any) -> None:
        node = {"models": [SMOLLM], "self_benchmark": False, "announce": False, "port": 0, "n_threads": 1, **node}
        self.settings = Settings.load(data_dir=data_dir, node=node)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-node", daemon=True)
        self.service: NodeService | None = None
        self.server: NodeServer | None = None
        self.address = ""
        self.runs: list[RunStats] = []

    def run(self, coro_fn: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro_fn(), self.loop)  # type: ignore[arg-type]
        return fut.result(timeout)

    def start(self) -> NodeThread:
        self._thread.start()

        async def up() -> str:
            self.service = build_node(self.settings)
            await self.service.start()
            for slot in self.service.slots.values():
                self._record_runs(slot.backend)
            self.server = NodeServer(self.service, host="127.0.0.1", port=0)
            return await self.server.start()

        self.address = self.run(up)
        return self

    def _record_runs(self, backend: LlamaBackend) -> None:
        """Keep the real backend but note each generation's RunStats (finish reason, token counts)."""
        real_run = backend.run

        def run(*args: Any, **kwargs: Any) -> RunStats:
            stats = real_run(*args, **kwargs)
            self.runs.append(stats)
            return stats

        backend.run = run  # type: ignore[method-assign]

    def depth(self, model_id: str = SMOLLM) -> int:
        assert self.service is not None
        return self.service.slots[model_id].depth

    def wait_depth(self, value: int, timeout: float = 10.0, model_id: str = SMOLLM) -> None:
        """Wait until the model's slot depth is `value`; fail with what it was otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.depth(model_id) == value:
                return
            time.sleep(0.01)
        pytest.fail(f"slot depth stayed {self.depth(model_id)}, expected {value} within {timeout} s")

    def wait_runs(self, count: int, timeout: float = 10.0) -> list[RunStats]:
        """Wait until `count` generations have finished in the backend (a cancelled one ends a token later)."""
        deadline = time.monotonic() + timeout
        while len(self.runs) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.runs) >= count, f"{len(self.runs)} generations finished, expected {count}"
        return list(self.runs)

    def stop(self) -> None:
        async def down() -> None:
            if self.server is not None:
                await self.server.stop(0.5)
            if self.service is not None:
                await self.service.close()

        try:
            self.run(down)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[NodeThread]:
    """One SmolLM2 node per module: queue_limit=1 and a small 256-token context, to reach the limits fast."""
    n = NodeThread(tmp_path_factory.mktemp("node-data"), queue_limit=1, n_ctx=256, name="test-node").start()
    try:
        yield n
    finally:
        n.stop()
