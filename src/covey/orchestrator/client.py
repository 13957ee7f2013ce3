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
        self.peer_version: int | None = None  # the version the node said it speaks to us (from info())

    async def info(self) -> NodeInfo:
        import grpc

        from covey import wire
        from covey.errors import IncompatibleProtocol
        from covey.types import PROTOCOL_VERSION, SUPPORTED_PROTOCOLS
        from covey.v1 import node_pb2 as pb

        # Newest first: a node of an older version refuses the newer one by name, and is asked again in
        # the older one it may speak (version 1 nodes refuse every other version in Info).
        for version in sorted(SUPPORTED_PROTOCOLS, reverse=True):
            try:
                msg = await self._stub.Info(pb.InfoRequest(protocol_version=version), timeout=self.connect_timeout_s)
                break
            except grpc.aio.AioRpcError as exc:
                err = wire.error_from_rpc(exc, self.address)
                if not isinstance(err, IncompatibleProtocol) or version == min(SUPPORTED_PROTOCOLS):
                    raise err from exc
                logger.info("node at %s refused protocol v%d (%s); asking in an older version", self.address,
                            version, err)
        check_peer_protocol(msg.protocol_version, self.address)
        self.peer_version = msg.protocol_version or PROTOCOL_VERSION
        return wire.info_from_pb(msg, self.address)

    async def generate(self, req: GenerateRequest) -> AsyncIterator[GenerateEvent]:
        import grpc

        from covey import wire

        if self.peer_version is not None and req.protocol_needed > self.peer_version:
            from covey.errors import IncompatibleProtocol

            raise IncompatibleProtocol(
                f"node at {self.address} speaks covey protocol v{self.peer_version}; a constrained request "
                f"(grammar or JSON schema) needs v{req.protocol_needed}",
                hint="send the request without a constraint, or upgrade covey on that node")
        # The node enforces deadline_ms itself and ends with a Final(finish_reason=DEADLINE) and the text so
        # far; the gRPC deadline only catches a node that stopped answering, so it comes a grace period later.
        timeout = req.deadline_ms / 1000.0 + self.deadline_grace_s if req.deadline_ms else None
        call = self._stub.Generate(wire.request_to_pb(req, req.protocol_needed), timeout=timeout)
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
    from covey.types import SUPPORTED_PROTOCOLS, spoken_protocols

    if version not in SUPPORTED_PROTOCOLS:
        raise IncompatibleProtocol(
            f"node at {address} speaks covey protocol v{version}, this orchestrator speaks {spoken_protocols()}"
        )
