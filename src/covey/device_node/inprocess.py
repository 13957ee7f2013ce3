"""The embedded node: a NodeService in the orchestrator's own process, reached with no network at all.

It has the shape of `covey.orchestrator.client.NodeClient` (a structural protocol), so the device node
package never imports the orchestrator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from covey.device_node.service import NodeService
from covey.types import GenerateEvent, GenerateRequest, NodeInfo


class InProcessNodeClient:
    """The embedded node: a NodeService in this process, no network at all."""

    def __init__(self, service: NodeService) -> None:
        self.service = service
        self.address = "embedded"

    async def info(self) -> NodeInfo:
        return self.service.info().model_copy(update={"address": self.address, "source": "embedded"})

    async def generate(self, req: GenerateRequest) -> AsyncIterator[GenerateEvent]:
        async for ev in self.service.generate(req):
            yield ev

    async def healthy(self) -> bool:
        return bool(self.service.slots or self.service.pending)

    async def close(self) -> None:
        await self.service.close()
