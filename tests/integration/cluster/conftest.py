"""Real mutual TLS on 127.0.0.1: a cluster CA in tmp_path, nodes with a scripted backend, real gRPC servers.

The backend is scripted (three pieces) so the tests are about the links, not the model; the server,
the certificates, the handshakes and the interceptor are all real.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from covey.cluster import pki
from covey.cluster.store import ClusterStore
from covey.cluster.tls import node_security
from covey.device_node.backend import RunStats
from covey.device_node.host import HostFacts, NodeIdentity
from covey.device_node.server import NodeServer
from covey.device_node.service import NodeService
from covey.energy.meter import CpuTimeEstimator
from covey.models.catalog import ModelSpec
from covey.settings import NodeSettings
from covey.types import Battery, FinishReason, GenerateRequest, ModelId, RequestId, TokenPiece

SMALL = ModelSpec(id="small", family="t", params_m=100, quant="Q4", file_mb=100, source="path", path="/m/small.gguf")


class ScriptedBackend:
    """Emits three pieces; records the requests it saw."""

    def __init__(self, spec: ModelSpec, path: Path, *, n_ctx: int, n_threads: int | None) -> None:
        self.spec, self.path, self.n_ctx, self.n_threads = spec, path, n_ctx, n_threads or 1
        self._formatter = None
        self.seen: list[GenerateRequest] = []

    def run(self, req, on_piece, *, cancelled=lambda: False, deadline=None, clock=None, between_tokens=None):
        self.seen.append(req)
        n = 0
        for n, text in enumerate(["Hel", "lo", "!"][: req.max_tokens], 1):
            on_piece(TokenPiece(text=text, logprobs=(-0.5,), token_ids=(n,)))
        return RunStats(finish=FinishReason.LENGTH, prompt_tokens=4, completion_tokens=n, prompt_ms=1.0,
                        generate_ms=2.0)

    def close(self) -> None:
        pass


class OneCatalog:
    def get(self, model_id: str) -> ModelSpec:
        from covey.errors import UnknownModel

        if model_id != SMALL.id:
            raise UnknownModel(f"unknown model id '{model_id}'")
        return SMALL

    def resolve(self, model_id: str) -> tuple[ModelSpec, Path]:
        return self.get(model_id), Path("/m/small.gguf")


def host_facts() -> HostFacts:
    return HostFacts(ram_total_bytes=8 << 30, ram_free_bytes=4 << 30, cpu_cores=4, accelerator="", battery=Battery())


def request(text: str = "hi") -> GenerateRequest:
    return GenerateRequest(request_id=RequestId("r"), model_id=ModelId("small"), prompt=text, max_tokens=8)


def make_cluster(root: Path, name: str = "laptop", node_id: str = "orch0001") -> ClusterStore:
    """A cluster whose CA (and orchestrator certificate) live in root/DATA_DIR."""
    store = ClusterStore(root)
    store.init(node_id, name)
    return store


def pair(ca: ClusterStore, data_dir: Path, node_id: str, name: str) -> ClusterStore:
    """Sign a certificate for a device directly at the CA (the invite path has its own tests)."""
    key = pki.new_key()
    cert = ca.issue(key.public_key(), node_id=node_id, name=name)
    store = ClusterStore(data_dir)
    store.save_device(pki.key_pem(key), pki.cert_pem(cert), ca_pem=ca.ca_pem(), meta={"cluster_id": ca.cluster_id()})
    return store


@dataclass
class RunningNode:
    server: NodeServer
    service: NodeService
    node_id: str
    data_dir: Path

    @property
    def address(self) -> str:
        return self.server.address

    async def stop(self) -> None:
        await self.server.stop(0.1)
        await self.service.close()


async def start_node(data_dir: Path, node_id: str, name: str, *, tps: float = 0.0) -> RunningNode:
    """A node on 127.0.0.1:0 secured the way `covey node join` secures it (TLS when paired)."""
    service = NodeService(NodeSettings(models=["small"], self_benchmark=False), identity=NodeIdentity(node_id, name),
                          catalog=OneCatalog(), data_dir=data_dir, read_host=host_facts,  # type: ignore[arg-type]
                          backend_factory=ScriptedBackend, meter=CpuTimeEstimator())
    await service.start()
    security = await node_security(data_dir, "127.0.0.1", node_id)
    server = NodeServer(service, host="127.0.0.1", port=0, credentials=security.credentials,
                        interceptors=security.interceptors)
    await server.start()
    return RunningNode(server, service, node_id, data_dir)


@pytest.fixture
def ca(tmp_path: Path) -> ClusterStore:
    return make_cluster(tmp_path / "ca-host")

