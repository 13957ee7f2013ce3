"""The node's gRPC server: the covey.v1.Node service, grpc.health.v1 and server reflection."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from covey import wire
from covey.device_node.backend import check_message_count
from covey.device_node.service import NodeService
from covey.errors import CoveyError, IncompatibleProtocol, PortInUse
from covey.types import CONSTRAINED_PROTOCOL, PROTOCOL_VERSION, SUPPORTED_PROTOCOLS, spoken_protocols
from covey.v1 import node_pb2 as pb
from covey.v1 import node_pb2_grpc as pb_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Node"].full_name

KEEPALIVE_POLICY: tuple[tuple[str, int], ...] = (
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 4_000),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.ping_timeout_ms", 10_000),
)
"""Accept the orchestrator's keepalive pings (covey.orchestrator.client.KEEPALIVE_OPTIONS, every 5 s even
while an answer waits in the queue and no data flows) instead of closing the link as abusive (faster pings
still count as strikes, gRPC's flood guard); and ping clients ourselves, so a request from an orchestrator
that froze or vanished is cancelled and frees its slot."""


class _Undecodable:
    """Stands in for a request whose bytes protobuf refused (e.g. a string field that is not UTF-8)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _lenient(parse):
    def deserialize(data: bytes):
        try:
            return parse(data)
        except DecodeError as exc:
            return _Undecodable(str(exc))
    return deserialize


def check_protocol(version: int) -> None:
    if version and version not in SUPPORTED_PROTOCOLS:
        raise IncompatibleProtocol(
            f"client speaks covey protocol v{version}, this node speaks " + spoken_protocols()
        )


def check_request_version(request: pb.GenerateRequest) -> None:
    """A known version, and one that carries what the request holds (a constraint needs version 2)."""
    check_protocol(request.protocol_version)
    if request.HasField("constraint") and request.protocol_version and request.protocol_version < CONSTRAINED_PROTOCOL:
        raise IncompatibleProtocol(
            f"the request says covey protocol v{request.protocol_version} but carries a constraint, which "
            f"needs v{CONSTRAINED_PROTOCOL}; this node speaks v{PROTOCOL_VERSION}"
        )


def spoken_version(client_version: int) -> int:
    """The version this node speaks to a client that said `client_version` (0: an unversioned probe)."""
    return min(client_version, PROTOCOL_VERSION) if client_version else PROTOCOL_VERSION


class NodeServicer(pb_grpc.NodeServicer):
    def __init__(self, service: NodeService) -> None:
        self.service = service

    async def Generate(self, request, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.GenerateEvent]:
        try:
            if isinstance(request, _Undecodable):
                raise wire.errors.BadRequest(
                    f"the request could not be decoded ({request.reason}); text fields must be valid UTF-8")
            check_request_version(request)
            # Counted on the protobuf message: building 200,000 Message models first took seconds.
            check_message_count(len(request.chat.messages), self.service.settings.max_messages,
                                f"node '{self.service.identity.name}'")
            req = wire.request_from_pb(request)
            async for ev in self.service.generate(req):
                yield wire.event_to_pb(ev)
        except CoveyError as exc:
            logger.info("Generate refused: %s", exc)
            await context.abort(wire.status_for(exc), str(exc), trailing_metadata=wire.error_metadata(exc))

    async def Info(self, request, context: grpc.aio.ServicerContext) -> pb.NodeInfo:
        try:
            if isinstance(request, _Undecodable):
                raise wire.errors.BadRequest(f"the request could not be decoded ({request.reason})")
            check_protocol(request.protocol_version)
        except CoveyError as exc:
            await context.abort(wire.status_for(exc), str(exc), trailing_metadata=wire.error_metadata(exc))
        info = self.service.info()
        # A version-1 client is answered as a version-1 node (it refuses any other), which it is to that client.
        return wire.info_to_pb(info.model_copy(update={"protocol_version": spoken_version(request.protocol_version)}))


def _add_servicer(servicer: NodeServicer, server: grpc.aio.Server) -> None:
    handlers = {
        "Generate": grpc.unary_stream_rpc_method_handler(
            servicer.Generate, request_deserializer=_lenient(pb.GenerateRequest.FromString),
            response_serializer=pb.GenerateEvent.SerializeToString),
        "Info": grpc.unary_unary_rpc_method_handler(
            servicer.Info, request_deserializer=_lenient(pb.InfoRequest.FromString),
            response_serializer=pb.NodeInfo.SerializeToString),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))


class NodeServer:
    """Owns the grpc.aio server for one NodeService. Mutual TLS plugs in at `credentials` and `interceptors`
    (covey.cluster: server credentials pinned to the cluster CA, and a per-call check of the peer certificate)."""

    def __init__(self, service: NodeService, host: str = "127.0.0.1", port: int = 0,
                 credentials: grpc.ServerCredentials | None = None,
                 interceptors: Sequence[grpc.aio.ServerInterceptor] = ()) -> None:
        self.service = service
        self.interceptors = tuple(interceptors)
        self.host = host
        self.port = port
        self.credentials = credentials
        self._server: grpc.aio.Server | None = None
        self.health = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> str:
        # gRPC's own default is 4 MiB; set here so the node's limit is the setting's, and a larger request is
        # refused by gRPC before it is read (the client names it RequestTooLarge, see wire.error_from_rpc).
        options = [("grpc.so_reuseport", 0),
                   ("grpc.max_receive_message_length", self.service.settings.max_request_bytes), *KEEPALIVE_POLICY]
        server = grpc.aio.server(options=options, interceptors=self.interceptors)
        _add_servicer(NodeServicer(self.service), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
        )
        target = f"{self.host}:{self.port}"
        try:
            bound = (server.add_secure_port(target, self.credentials) if self.credentials
                     else server.add_insecure_port(target))
        except RuntimeError as exc:
            bound = 0
            logger.debug("bind failed: %s", exc)
        if not bound:
            await server.stop(None)
            raise PortInUse(f"could not listen on {target} (port already taken or address not on this host)")
        self.port = bound
        await server.start()
        self._server = server
        self.service.address = self.address
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        logger.info("node %s serving on %s", self.service.identity.name, self.address)
        return self.address

    async def _set_health(self, status) -> None:
        for name in ("", SERVICE_NAME):
            result = self.health.set(name, status)
            if hasattr(result, "__await__"):
                await result

    async def stop(self, grace: float = 2.0) -> None:
        if self._server is not None:
            await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
            await self._server.stop(grace)
            self._server = None

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()
