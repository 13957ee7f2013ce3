"""How the orchestrator talks to nodes: the NodeClient protocol and its implementations."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from covey.types import GenerateEvent, GenerateRequest, NodeInfo

if TYPE_CHECKING:
    import grpc

logger = logging.getLogger(__name__)

KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 5_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.ping_timeout_ms", 5_000),  # gRPC >= 1.6x times keepalive pings with this one (default 60 s)
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
)
"""HTTP/2 pings while a call is open: a node that froze (SIGSTOP, a hung kernel, a dropped Wi-Fi link)
stops answering them and its calls fail as UNAVAILABLE within about 10 s, also while an answer waits
in the node's queue, where no piece is due yet (covey.device_node.server.KEEPALIVE_POLICY lets them in)."""


@runtime_checkable
class NodeClient(Protocol):
    """A node as the orchestrator sees it. Errors are covey errors (NodeUnavailable, NodeBusy, ...)."""

    address: str

    async def info(self) -> NodeInfo: ...

    def generate(self, req: GenerateRequest) -> AsyncIterator[GenerateEvent]: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...


class GrpcNodeClient:
    """A node over gRPC (covey.v1.Node); `credentials` and channel `options` carry mutual TLS (covey.cluster).

    Channels keep alive with KEEPALIVE_OPTIONS unless `options` name their own values."""

    def __init__(self, address: str, *, credentials: grpc.ChannelCredentials | None = None,
                 options: Sequence[tuple[str, Any]] = (),
                 connect_timeout_s: float = 5.0, deadline_grace_s: float = 5.0) -> None:
        import grpc

        self.address = address
        self.connect_timeout_s = connect_timeout_s
        self.deadline_grace_s = deadline_grace_s
        given = {name for name, _ in options}
        options = [*options, *(o for o in KEEPALIVE_OPTIONS if o[0] not in given)]
        self._channel = (grpc.aio.secure_channel(address, credentials, options=options) if credentials
                         else grpc.aio.insecure_channel(address, options=options))
        from covey.v1 import node_pb2_grpc

        self._stub = node_pb2_grpc.NodeStub(self._channel)

    async def info(self) -> NodeInfo:
        import grpc

        from covey import wire
        from covey.types import PROTOCOL_VERSION
        from covey.v1 import node_pb2 as pb

        try:
            msg = await self._stub.Info(pb.InfoRequest(protocol_version=PROTOCOL_VERSION),
                                        timeout=self.connect_timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise wire.error_from_rpc(exc, self.address) from exc
        check_peer_protocol(msg.protocol_version, self.address)
        return wire.info_from_pb(msg, self.address)

    async def generate(self, req: GenerateRequest) -> AsyncIterator[GenerateEvent]:
        import grpc

        from covey import wire
        from covey.types import PROTOCOL_VERSION

        # The node enforces deadline_ms itself and ends with a Final(finish_reason=DEADLINE) and the text so
        # far; the gRPC deadline only catches a node that stopped answering, so it comes a grace period later.
        timeout = req.deadline_ms / 1000.0 + self.deadline_grace_s if req.deadline_ms else None
        call = self._stub.Generate(wire.request_to_pb(req, PROTOCOL_VERSION), timeout=timeout)
        try:
            async for msg in call:
                yield wire.event_from_pb(msg, self.address)
        except grpc.aio.AioRpcError as exc:
            raise wire.error_from_rpc(exc, self.address) from exc
        finally:
            if not call.done():
                call.cancel()

    async def healthy(self) -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            resp = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=self.connect_timeout_s)
        except grpc.aio.AioRpcError:
            return False
        return resp.status == health_pb2.HealthCheckResponse.SERVING

    async def close(self) -> None:
        await self._channel.close()


def check_peer_protocol(version: int, address: str) -> None:
    from covey.errors import IncompatibleProtocol
    from covey.types import PROTOCOL_VERSION

    if version != PROTOCOL_VERSION:
        raise IncompatibleProtocol(
            f"node at {address} speaks covey protocol v{version}, this orchestrator speaks v{PROTOCOL_VERSION}"
        )
