"""Mutual TLS on every gRPC link, pinned to the cluster CA, and the policy for when plaintext is allowed.

Node side: server credentials that require a client certificate from the cluster CA, plus
:class:`PeerCheck`, an interceptor that re-checks the peer's certificate against the revocation
list on every call (Generate, Info, health and reflection alike).

The orchestrator's side (clients bound to a node id, admission of announcements) is in
:mod:`covey.cluster.access`, so device nodes never import the orchestrator.

Plaintext: with no cluster identity, both ends may talk plaintext on loopback (tests, the demo); off
loopback only with ``--insecure`` (COVEY_CLUSTER__INSECURE), which warns.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import grpc

from covey.cluster import pki
from covey.cluster.store import ClusterStore
from covey.errors import CertificateRevoked, ClusterError, CoveyError, NotPaired

logger = logging.getLogger(__name__)

INSECURE_WARNING = ("insecure mode: gRPC runs in plaintext without pairing; anyone on this network can use the "
                    "node, read prompts and answers, and pose as a node")


def is_loopback(host_or_address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost, given a host or a host:port."""
    host = host_or_address
    if host.startswith("["):
        host = host[1:].split("]")[0]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ClusterTls:
    """This device's credentials: its key and certificate, the pinned CA, the revocation list."""

    def __init__(self, store: ClusterStore) -> None:
        store.require_member()
        self.store = store
        self._key, self._cert = store.device_pem()
        self._ca = store.ca_pem()
        self.node_id = pki.cert_node_id(pki.load_cert(self._cert))
        self._channel_credentials: grpc.ChannelCredentials | None = None

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self._key, self._cert)], root_certificates=self._ca,
                                           require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        if self._channel_credentials is None:
            self._channel_credentials = grpc.ssl_channel_credentials(
                root_certificates=self._ca, private_key=self._key, certificate_chain=self._cert)
        return self._channel_credentials

    def revoked(self, node_id: str) -> bool:
        return self.store.revoked().covers(node_id=node_id)


# -- node side ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=256)
def _peer(pem: bytes) -> tuple[int, str]:
    cert = pki.load_cert(pem)
    return cert.serial_number, pki.cert_node_id(cert)


class PeerCheck(grpc.aio.ServerInterceptor):
    """Refuses any call whose peer shows no cluster certificate or a revoked one, on every RPC."""

    def __init__(self, store: ClusterStore) -> None:
        self.store = store

    def refusal(self, context) -> CoveyError | None:
        pems = context.auth_context().get("x509_pem_cert") or []
        if not pems:
            return NotPaired("this node serves only members of its cluster, and the caller showed no certificate")
        serial, node_id = _peer(bytes(pems[0]))
        if self.store.revoked().covers(serial=serial, node_id=node_id):
            return CertificateRevoked(f"the certificate of {node_id} was revoked from this cluster")
        return None

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        return None if handler is None else _guarded(handler, self.refusal)


def _guarded(handler: grpc.RpcMethodHandler, refusal: Callable[[object], CoveyError | None]) -> grpc.RpcMethodHandler:
    from covey import wire

    async def abort(context, exc: CoveyError) -> None:
        logger.warning("refused a call from %s: %s", context.peer(), exc.message)
        code = grpc.StatusCode.PERMISSION_DENIED if isinstance(exc, CertificateRevoked) else \
            grpc.StatusCode.UNAUTHENTICATED
        await context.abort(code, str(exc), trailing_metadata=wire.error_metadata(exc))

    def wrap(behaviour):
        if inspect.isasyncgenfunction(behaviour):
            async def stream(request, context):
                if (exc := refusal(context)) is not None:
                    await abort(context, exc)
                async for item in behaviour(request, context):
                    yield item
            return stream

        async def call(request, context):
            if (exc := refusal(context)) is not None:
                await abort(context, exc)
            result = behaviour(request, context)
            return await result if inspect.isawaitable(result) else result
        return call

    kinds = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
    kind = next(k for k in kinds if getattr(handler, k) is not None)
    make = {"unary_unary": grpc.unary_unary_rpc_method_handler, "unary_stream": grpc.unary_stream_rpc_method_handler,
            "stream_unary": grpc.stream_unary_rpc_method_handler,
            "stream_stream": grpc.stream_stream_rpc_method_handler}[kind]
    return make(wrap(getattr(handler, kind)), request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)


@dataclass(frozen=True)
class ServerSecurity:
    credentials: grpc.ServerCredentials | None
    interceptors: tuple[grpc.aio.ServerInterceptor, ...]
    mode: str
    """'mutual TLS (cluster ID)', 'plaintext on loopback' or 'INSECURE plaintext'."""
    store: ClusterStore | None = None

    def follow_revocations(self, interval_s: float) -> asyncio.Task[None] | None:
        """On a member (not the CA host) that knows its CA host: keep its revocation list current, as a task."""
        store = self.store
        if store is None or store.is_authority() or not store.meta().get("enrol_address"):
            return None
        from covey.cluster.enrol import follow_revocations

        return asyncio.create_task(follow_revocations(store, interval_s))


async def node_security(data_dir: Path, host: str, node_id: str, *, insecure: bool = False,
                  cert_days: float = 90.0) -> ServerSecurity:
    """How a node serving on ``host`` protects its port; refuses plaintext off loopback unless insecure."""
    if insecure:
        logger.warning(INSECURE_WARNING)
        return ServerSecurity(None, (), "INSECURE plaintext")
    store = ClusterStore(data_dir, cert_days=cert_days)
    if not store.is_member():
        if is_loopback(host):
            return ServerSecurity(None, (), "plaintext on loopback (not paired)")
        raise NotPaired(f"refusing to serve {host} in plaintext: this device is not paired with a cluster")
    cert_id = pki.cert_node_id(store.device_cert())
    if cert_id != node_id:
        raise ClusterError(f"this device's certificate is for node {cert_id}, but its node id is {node_id}",
                           hint="restore DATA_DIR/node/identity.json, or pair again with a new invite")
    from covey.cluster.enrol import renew_if_due

    await renew_if_due(store)
    tls = ClusterTls(store)
    return ServerSecurity(tls.server_credentials(), (PeerCheck(store),), f"mutual TLS (cluster {store.cluster_id()})",
                          store)
