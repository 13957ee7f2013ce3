"""The orchestrator's side of mutual TLS: clients bound to a node id, and admission of announced nodes.

:class:`ClusterNodeClient` presents this device's certificate and accepts only a server certificate
from the same CA that carries the expected node id (``n<hash>.node.covey``); a client created for an
address alone first learns the id from a member certificate, then binds to it.
:func:`orchestrator_access` also gives the directory an ``admit`` check: an announcement is kept only
once the node at that address proved, in a TLS handshake, that it holds the announced node id's
certificate, and the node's own Info (not the announcement's claims) is what the directory stores.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from covey.cluster import pki
from covey.cluster.store import ClusterStore
from covey.cluster.tls import INSECURE_WARNING, ClusterTls, is_loopback
from covey.errors import CertificateRevoked, CoveyError, ForeignNode, NodeUnavailable, NotPaired
from covey.orchestrator.client import GrpcNodeClient, NodeClient
from covey.types import GenerateEvent, GenerateRequest, NodeInfo

logger = logging.getLogger(__name__)

Admit = Callable[[NodeInfo], Awaitable[NodeInfo]]
ClientFactory = Callable[[str], NodeClient]

# -- orchestrator side -------------------------------------------------------------------------------------

_TLS_MARKERS = ("handshake", "certificate", "ssl", "tls", "peer name", "alert", "tsi_", "verification",
                "hostname", "wrong_version", "unknown_ca")


def _classify(exc: CoveyError, address: str) -> CoveyError:
    """A failed handshake means the peer is no member of this cluster (or not the member it claims)."""
    if isinstance(exc, NodeUnavailable) and any(m in str(exc).lower() for m in _TLS_MARKERS):
        return ForeignNode(f"the node at {address} is not a member of this cluster (its certificate is not "
                           f"from this cluster's CA, is not for the node id it claims, or it speaks no TLS)")
    return exc


class ClusterNodeClient:
    """A NodeClient over mutual TLS, bound to one node id (learnt from the peer's first Info if not given)."""

    def __init__(self, address: str, tls: ClusterTls, node_id: str | None = None, **client_options) -> None:
        self.address = address
        self._tls = tls
        self._options = client_options
        self.node_id = node_id
        self._inner = self._open(node_id)

    def _open(self, node_id: str | None) -> GrpcNodeClient:
        name = pki.node_server_name(node_id) if node_id else pki.MEMBER_NAME
        return GrpcNodeClient(self.address, credentials=self._tls.channel_credentials(),
                              options=[("grpc.ssl_target_name_override", name)], **self._options)

    async def _bind(self) -> None:
        if self.node_id is not None:
            if self._tls.revoked(self.node_id):
                raise CertificateRevoked(f"node {self.node_id} at {self.address} was revoked from this cluster")
            return
        try:
            claimed = (await self._inner.info()).node_id
        except CoveyError as exc:
            raise _classify(exc, self.address) from exc
        old, self._inner, self.node_id = self._inner, self._open(claimed), claimed
        await old.close()
        await self.info()  # the handshake now requires the certificate of `claimed`

    async def info(self) -> NodeInfo:
        await self._bind()
        try:
            info = await self._inner.info()
        except CoveyError as exc:
            raise _classify(exc, self.address) from exc
        if info.node_id != self.node_id:
            raise ForeignNode(f"the node at {self.address} holds the certificate of {self.node_id} "
                              f"but says it is {info.node_id}")
        return info

    async def generate(self, req: GenerateRequest) -> AsyncIterator[GenerateEvent]:
        await self._bind()
        try:
            async for ev in self._inner.generate(req):
                yield ev
        except CoveyError as exc:
            raise _classify(exc, self.address) from exc

    async def healthy(self) -> bool:
        try:
            await self._bind()
        except CoveyError:
            return False
        return await self._inner.healthy()

    async def close(self) -> None:
        await self._inner.close()


class UnpairedClient:
    """Stands in for a node off loopback that an unpaired orchestrator must not talk to in plaintext."""

    def __init__(self, address: str) -> None:
        self.address = address

    def _refuse(self) -> NotPaired:
        return NotPaired(f"not talking to {self.address} in plaintext: this orchestrator is not paired with a cluster")

    async def info(self) -> NodeInfo:
        raise self._refuse()

    async def generate(self, req: GenerateRequest) -> AsyncIterator[GenerateEvent]:
        raise self._refuse()
        yield  # pragma: no cover - makes this an async generator

    async def healthy(self) -> bool:
        return False

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class Access:
    """How this orchestrator reaches nodes: the pool's client factory and the directory's admission check."""

    client_factory: ClientFactory
    admit: Admit
    mode: str
    tls: ClusterTls | None = None


async def orchestrator_access(data_dir: Path, *, insecure: bool = False, cert_days: float = 90.0) -> Access:
    if insecure:
        logger.warning(INSECURE_WARNING)

        async def admit_any(node: NodeInfo) -> NodeInfo:
            return node

        return Access(lambda address: GrpcNodeClient(address), admit_any, "INSECURE plaintext")
    store = ClusterStore(data_dir, cert_days=cert_days)
    if not store.is_member():
        async def admit_loopback(node: NodeInfo) -> NodeInfo:
            if is_loopback(node.address):
                return node
            raise NotPaired(f"node {node.name!r} at {node.address} is not used: this orchestrator is not paired "
                            "with a cluster")

        return Access(lambda address: GrpcNodeClient(address) if is_loopback(address) else UnpairedClient(address),
                      admit_loopback, "plaintext on loopback only (not paired)")
    from covey.cluster.enrol import renew_if_due

    await renew_if_due(store)
    tls = ClusterTls(store)

    async def admit(node: NodeInfo) -> NodeInfo:
        if tls.revoked(node.node_id):
            raise CertificateRevoked(f"node {node.name!r} ({node.node_id}) was revoked from this cluster")
        client = ClusterNodeClient(node.address, tls, node_id=node.node_id, connect_timeout_s=3.0)
        try:
            info = await client.info()
        finally:
            await client.close()
        return info.model_copy(update={"address": node.address, "source": node.source})

    return Access(lambda address: ClusterNodeClient(address, tls), admit,
                  f"mutual TLS (cluster {store.cluster_id()})", tls)
