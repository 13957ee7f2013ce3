"""Mutual TLS overhead: tokens/s and time to first token through a paired node vs a plaintext one.

Real SmolLM2-135M. Two `covey node join` processes on 127.0.0.1, one unpaired (plaintext on
loopback) and one paired with a throw-away cluster (mutual TLS pinned to its CA), driven round by
round in turn through the orchestrator's clients (GrpcNodeClient, and the cluster's
ClusterNodeClient with the CA host's certificate), so machine drift affects both alike. Channels
are warmed up first: the one-off handshakes are not in the figures (see "handshake" below).
Prints the median per-round tokens/s ratio TLS/plaintext (target >= 0.97) and the added TTFT
(target <= 5 ms). Not a test: run `python bench/bench_tls.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_grpc import run_grpc, start_node  # noqa: E402

from covey.cluster import pki  # noqa: E402
from covey.cluster.access import orchestrator_access  # noqa: E402
from covey.cluster.store import ClusterStore  # noqa: E402
from covey.device_node.host import load_identity  # noqa: E402
from covey.energy.meter import CpuTimeEstimator  # noqa: E402
from covey.orchestrator.client import GrpcNodeClient  # noqa: E402


def paired_data_dir(root: Path) -> tuple[Path, Path]:
    """A cluster (CA host in root/ca) and a node data dir holding a certificate for its node id."""
    ca = ClusterStore(root / "ca")
    ca.init("bench-orchestrator", "bench")
    node_dir = root / "tls-node"
    node_id = load_identity(node_dir).node_id
    key = pki.new_key()
    cert = ca.issue(key.public_key(), node_id=node_id, name="tls-node")
    ClusterStore(node_dir).save_device(pki.key_pem(key), pki.cert_pem(cert), ca_pem=ca.ca_pem())
    return root / "ca", node_dir


async def first_call_ms(make) -> float:
    client = make()
    t0 = time.perf_counter()
    await client.info()
    ms = (time.perf_counter() - t0) * 1000.0
    await client.close()
    return ms


class PiecesBackend:
    """No model: emits `n` one-token pieces at once, so only the transport is timed."""

    n = 64

    def __init__(self, spec, path, *, n_ctx: int, n_threads: int | None) -> None:
        self.spec, self.path, self.n_ctx, self.n_threads, self._formatter = spec, path, n_ctx, n_threads or 1, None

    def run(self, req, on_piece, **_):
        from covey.device_node.backend import RunStats
        from covey.types import FinishReason, TokenPiece

        for i in range(req.max_tokens):
            on_piece(TokenPiece(text=" tok", logprobs=(-0.1,), token_ids=(i,)))
        return RunStats(finish=FinishReason.LENGTH, prompt_tokens=4, completion_tokens=req.max_tokens, prompt_ms=0.0,
                        generate_ms=0.0)

    def close(self) -> None:
        pass


async def transport_only(root: Path, calls: int, tokens: int) -> dict[str, tuple[float, float]]:
    """Median ms to first token and for a whole stream of `tokens` pieces, in-process servers, no model."""
    from covey.cluster.tls import node_security
    from covey.device_node.host import HostFacts, NodeIdentity
    from covey.device_node.server import NodeServer
    from covey.device_node.service import NodeService
    from covey.models.catalog import ModelSpec
    from covey.settings import NodeSettings
    from covey.types import Battery

    spec = ModelSpec(id="echo", family="t", params_m=1, quant="Q4", file_mb=1, source="path", path="/m/echo.gguf")

    class Catalog1:
        def get(self, model_id):
            return spec

        def resolve(self, model_id):
            return spec, Path("/m/echo.gguf")

    ca_dir, node_dir = paired_data_dir(root)
    node_id = load_identity(node_dir).node_id
    servers, clients = [], {}
    access = await orchestrator_access(ca_dir)
    for name, data_dir in (("plaintext", root / "plain-echo"), ("mutual TLS", node_dir)):
        service = NodeService(NodeSettings(models=["echo"], self_benchmark=False), identity=NodeIdentity(node_id, name),
                              catalog=Catalog1(), data_dir=data_dir, backend_factory=PiecesBackend,
                              meter=CpuTimeEstimator(),
                              read_host=lambda: HostFacts(1 << 30, 1 << 30, 1, "", Battery()))
        await service.start()
        security = await node_security(data_dir, "127.0.0.1", node_id)
        server = NodeServer(service, port=0, credentials=security.credentials, interceptors=security.interceptors)
        address = await server.start()
        servers.append((server, service))
        clients[name] = GrpcNodeClient(address) if name == "plaintext" else access.client_factory(address)
    from covey.types import GenerateRequest, ModelId, RequestId

    req = GenerateRequest(request_id=RequestId("t"), model_id=ModelId("echo"), prompt="x", max_tokens=tokens)
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in clients}
    try:
        for client in clients.values():
            [ev async for ev in client.generate(req)]
        for i in range(calls):
            for name in (list(clients) if i % 2 == 0 else list(clients)[::-1]):
                t0 = time.perf_counter()
                first = None
                async for _ in clients[name].generate(req):
                    first = first or time.perf_counter()
                times[name].append(((first - t0) * 1000.0, (time.perf_counter() - t0) * 1000.0))
    finally:
        for client in clients.values():
            await client.close()
        for server, service in servers:
            await server.stop(0)
            await service.close()
    return {n: (statistics.median(a for a, _ in ts), statistics.median(b for _, b in ts)) for n, ts in times.items()}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calls", type=int, default=200, help="streams per path in the transport-only part")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        transport = await transport_only(Path(tmp), args.calls, args.tokens)
    print(f"transport only (no model, {args.tokens} pieces per stream, {args.calls} alternating streams per path):")
    for name, (first, whole) in transport.items():
        print(f"  {name:11} first piece {first:6.2f} ms   whole stream {whole:6.2f} ms (median)")
    print(f"  TLS adds {transport['mutual TLS'][0] - transport['plaintext'][0]:.2f} ms to the first piece and "
          f"{transport['mutual TLS'][1] - transport['plaintext'][1]:.2f} ms to a {args.tokens}-piece stream")

    with tempfile.TemporaryDirectory() as tmp:
        ca_dir, tls_dir = paired_data_dir(Path(tmp))
        plain_proc, plain_addr = start_node(args.threads, Path(tmp) / "plain-node")
        tls_proc, tls_addr = start_node(args.threads, tls_dir)
        access = await orchestrator_access(ca_dir)
        plain, tls = GrpcNodeClient(plain_addr), access.client_factory(tls_addr)
        try:
            handshake = {
                "plaintext": statistics.median([await first_call_ms(lambda: GrpcNodeClient(plain_addr))
                                                for _ in range(5)]),
                "mutual TLS": statistics.median([await first_call_ms(lambda: access.client_factory(tls_addr))
                                                 for _ in range(5)]),
            }
            await run_grpc(plain, 8), await run_grpc(tls, 8)  # warm-up: connections made, model paged in
            runs = {"plaintext": [], "mutual TLS": []}
            for i in range(args.rounds):
                order = [("plaintext", plain), ("mutual TLS", tls)]
                for name, client in order if i % 2 == 0 else order[::-1]:
                    runs[name].append(await run_grpc(client, args.tokens))
        finally:
            await plain.close()
            await tls.close()
            for proc in (plain_proc, tls_proc):
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)

    print(f"SmolLM2-135M Q4_1, {args.tokens} tokens, {args.threads} thread(s), {args.rounds} alternating rounds")
    print(f"{'path':11} {'tok/s (median)':>15} {'TTFT ms (median)':>17} {'first Info ms (new channel)':>28}")
    for name, rs in runs.items():
        print(f"{name:11} {statistics.median(r.tokens_per_second for r in rs):15.1f} "
              f"{statistics.median(r.ttft_ms for r in rs):17.1f} {handshake[name]:28.1f}")
    ratios = [t.tokens_per_second / p.tokens_per_second for t, p in zip(runs["mutual TLS"], runs["plaintext"])]
    added = [t.ttft_ms - p.ttft_ms for t, p in zip(runs["mutual TLS"], runs["plaintext"])]
    ratio, extra = statistics.median(ratios), statistics.median(added)
    print(f"TLS/plaintext tokens/s ratio: {ratio:.3f} (median of per-round ratios; target >= 0.97)"
          f"  [{'ok' if ratio >= 0.97 else 'BELOW TARGET'}]  range {min(ratios):.3f}..{max(ratios):.3f}")
    print(f"added time to first token with TLS: {extra:.2f} ms (median; target <= 5 ms)"
          f"  [{'ok' if extra <= 5 else 'ABOVE TARGET'}]  range {min(added):.2f}..{max(added):.2f} ms")
    print(f"one-off cost of a new mutual-TLS client (two handshakes: member, then bound to the node id): "
          f"{handshake['mutual TLS'] - handshake['plaintext']:.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
