"""Every gRPC link is mutual TLS pinned to the cluster CA: real servers, real handshakes on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from covey.cluster.access import ClusterNodeClient, orchestrator_access
from covey.cluster.store import ClusterStore
from covey.cluster.tls import ClusterTls, node_security
from covey.errors import CertificateRevoked, ForeignNode, NodeUnavailable, NotPaired
from covey.orchestrator.client import GrpcNodeClient
from covey.cli_output import render_nodes_table
from covey.orchestrator.pool import NodePool
from covey.settings import OrchestratorSettings
from covey.types import GenerateFinal, ModelId, NodeId, NodeInfo, PROTOCOL_VERSION
from covey.v1 import node_pb2 as pb
from covey.v1 import node_pb2_grpc as pb_grpc

from .conftest import make_cluster, pair, request, start_node


async def every_rpc(channel: grpc.aio.Channel) -> dict[str, grpc.StatusCode | None]:
    """Call each service the node serves (Node Info/Generate, health Check/Watch, reflection); None = answered."""
    stub = pb_grpc.NodeStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    calls = {
        "Info": lambda: stub.Info(pb.InfoRequest(protocol_version=PROTOCOL_VERSION), timeout=3),
        "Generate": lambda: _drain(stub.Generate(pb.GenerateRequest(protocol_version=PROTOCOL_VERSION,
                                                                    model_id="small", prompt="hi", max_tokens=2),
                                                 timeout=3)),
        "Health.Check": lambda: health.Check(health_pb2.HealthCheckRequest(service=""), timeout=3),
        "Health.Watch": lambda: _first(health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=3)),
        "Reflection": lambda: _drain(refl.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=3)),
    }
    out: dict[str, grpc.StatusCode | None] = {}
    for name, call in calls.items():
        try:
            await call()
            out[name] = None
        except grpc.aio.AioRpcError as exc:
            out[name] = exc.code()
    return out


async def _drain(call) -> None:
    async for _ in call:
        pass


async def _first(call) -> None:
    async for _ in call:
        call.cancel()
        return


async def test_a_paired_orchestrator_uses_the_node_over_mutual_tls(ca: ClusterStore, tmp_path: Path) -> None:
    pair(ca, tmp_path / "den", "node0001", "den-pc")
    node = await start_node(tmp_path / "den", "node0001", "den-pc")
    access = await orchestrator_access(ca.dir.parent)
    client = access.client_factory(node.address)
    try:
        assert access.mode.startswith("mutual TLS")
        assert (await client.info()).node_id == "node0001"
        events = [ev async for ev in client.generate(request())]
        assert isinstance(events[-1], GenerateFinal) and events[-1].completion_tokens == 3
        assert await client.healthy()
        tls = ClusterTls(ca)
        channel = grpc.aio.secure_channel(node.address, tls.channel_credentials(),
                                          options=[("grpc.ssl_target_name_override", "member.covey")])
        assert await every_rpc(channel) == dict.fromkeys(
            ["Info", "Generate", "Health.Check", "Health.Watch", "Reflection"])
        await channel.close()
    finally:
        await client.close()
        await node.stop()


async def test_an_unpaired_client_is_refused_on_every_rpc(ca: ClusterStore, tmp_path: Path) -> None:
    pair(ca, tmp_path / "den", "node0001", "den-pc")
    node = await start_node(tmp_path / "den", "node0001", "den-pc")
    try:
        plaintext = grpc.aio.insecure_channel(node.address)
        # TLS that trusts the cluster CA but shows no client certificate: the handshake itself fails.
        no_cert = grpc.aio.secure_channel(node.address, grpc.ssl_channel_credentials(root_certificates=ca.ca_pem()),
                                          options=[("grpc.ssl_target_name_override", "member.covey")])
        for channel in (plaintext, no_cert):
            codes = await every_rpc(channel)
            assert set(codes) == {"Info", "Generate", "Health.Check", "Health.Watch", "Reflection"}
            assert all(code is not None for code in codes.values()), codes
            await channel.close()
        with pytest.raises(NodeUnavailable):
            await GrpcNodeClient(node.address).info()
        assert not await GrpcNodeClient(node.address).healthy()
    finally:
        await node.stop()


async def test_a_node_of_another_cluster_is_refused_and_shown_as_foreign(ca: ClusterStore, tmp_path: Path) -> None:
    other = make_cluster(tmp_path / "neighbour", name="neighbour-laptop", node_id="orch9999")
    pair(other, tmp_path / "theirs", "node0009", "their-pc")
    theirs = await start_node(tmp_path / "theirs", "node0009", "their-pc")
    access = await orchestrator_access(ca.dir.parent)
    try:
        with pytest.raises(ForeignNode, match="not a member of this cluster"):
            await access.client_factory(theirs.address).info()
        announced = NodeInfo(node_id=NodeId("node0009"), name="their-pc", address=theirs.address, source="zeroconf")
        with pytest.raises(ForeignNode):
            await access.admit(announced)
        pool = NodePool(OrchestratorSettings(discover=False, static_peers=[theirs.address], health_interval_s=60),
                        client_factory=access.client_factory, admit=access.admit)
        await pool.start()
        try:
            assert pool.directory.nodes() == ()
            (refused,) = pool.directory.refused()
            assert refused.foreign and refused.address == theirs.address
            from rich.console import Console

            console = Console(width=200, record=True)
            console.print(render_nodes_table(pool.directory.nodes(), pool.directory.refused()))
            assert "foreign" in console.export_text()
        finally:
            await pool.close()
    finally:
        await theirs.stop()


async def test_a_spoofed_id_or_speed_claim_is_not_what_the_directory_keeps(ca: ClusterStore, tmp_path: Path) -> None:
    pair(ca, tmp_path / "den", "node0001", "den-pc")
    pair(ca, tmp_path / "rogue", "node0002", "rogue")
    real = await start_node(tmp_path / "den", "node0001", "den-pc")
    rogue = await start_node(tmp_path / "rogue", "node0002", "rogue")
    access = await orchestrator_access(ca.dir.parent)
    try:
        # A member announcing another member's id at its own address: its certificate is for another id.
        spoof = NodeInfo(node_id=NodeId("node0001"), name="den-pc", address=rogue.address, source="zeroconf")
        with pytest.raises(ForeignNode):
            await access.admit(spoof)
        # A fake speed claim in the announcement: the directory keeps what the node itself reports.
        boast = NodeInfo(node_id=NodeId("node0001"), name="den-pc", address=real.address, source="zeroconf",
                         tokens_per_second=9999.0, joules_per_token=0.0001)
        kept = await access.admit(boast)
        assert kept.node_id == "node0001" and kept.source == "zeroconf"
        assert kept.tokens_per_second == 0.0 and kept.joules_per_token == 0.0
        # A client bound to one id refuses another member at that address.
        with pytest.raises(ForeignNode):
            await ClusterNodeClient(rogue.address, ClusterTls(ca), node_id="node0001").info()
    finally:
        await real.stop()
        await rogue.stop()


async def test_revocation_takes_effect_on_the_next_call_in_both_directions(ca: ClusterStore, tmp_path: Path) -> None:
    den = pair(ca, tmp_path / "den", "node0001", "den-pc")
    node = await start_node(tmp_path / "den", "node0001", "den-pc")
    access = await orchestrator_access(ca.dir.parent)
    client = access.client_factory(node.address)
    try:
        assert (await client.info()).node_id == "node0001"
        ca.revoke("den-pc")  # `covey node revoke den-pc` on the CA host: the orchestrator stops using it
        with pytest.raises(CertificateRevoked):
            await client.info()
        with pytest.raises(CertificateRevoked):
            await access.admit(NodeInfo(node_id=NodeId("node0001"), name="den-pc", address=node.address))
        assert not await client.healthy()

        # The node's own list, checked per call on a live connection: a revoked orchestrator is refused.
        fresh = access.client_factory(node.address)
        (den.dir / "revoked.json").write_text(json.dumps({"serials": [], "node_ids": []}))
        tls = ClusterTls(ca)
        channel = grpc.aio.secure_channel(node.address, tls.channel_credentials(),
                                          options=[("grpc.ssl_target_name_override", "member.covey")])
        assert (await every_rpc(channel))["Info"] is None
        orchestrator_serial = ca.device_cert().serial_number
        (den.dir / "revoked.json").write_text(json.dumps({"serials": [str(orchestrator_serial)], "node_ids": []}))
        codes = await every_rpc(channel)  # same channel, same TLS session
        assert set(codes.values()) == {grpc.StatusCode.PERMISSION_DENIED}, codes
        with pytest.raises(CertificateRevoked, match="revoked"):
            await fresh.info()
        await channel.close()
        await fresh.close()
    finally:
        await client.close()
        await node.stop()


async def test_plaintext_only_on_loopback_unless_insecure(tmp_path: Path) -> None:
    with pytest.raises(NotPaired, match="plaintext"):
        await node_security(tmp_path / "lonely", "0.0.0.0", "node0001")
    assert (await node_security(tmp_path / "lonely", "127.0.0.1", "node0001")).credentials is None
    assert (await node_security(tmp_path / "lonely", "0.0.0.0", "node0001", insecure=True)).mode.startswith("INSECURE")
    access = await orchestrator_access(tmp_path / "lonely")
    lan = NodeInfo(node_id=NodeId("x"), name="lan-box", address="192.0.2.7:50551", source="zeroconf")
    with pytest.raises(NotPaired):
        await access.admit(lan)
    with pytest.raises(NotPaired):
        await access.client_factory("192.0.2.7:50551").info()
    local = lan.model_copy(update={"address": "127.0.0.1:50551"})
    assert await access.admit(local) == local


async def test_a_certificate_for_another_node_id_refuses_to_serve(ca: ClusterStore, tmp_path: Path) -> None:
    pair(ca, tmp_path / "den", "node0001", "den-pc")
    from covey.errors import ClusterError

    with pytest.raises(ClusterError, match="certificate is for node node0001"):
        await node_security(tmp_path / "den", "127.0.0.1", "copied0002")


async def test_models_reach_through_tls_unchanged(ca: ClusterStore, tmp_path: Path) -> None:
    """The request the backend sees over TLS is the one the orchestrator sent."""
    pair(ca, tmp_path / "den", "node0001", "den-pc")
    node = await start_node(tmp_path / "den", "node0001", "den-pc")
    client = (await orchestrator_access(ca.dir.parent)).client_factory(node.address)
    try:
        [ev async for ev in client.generate(request("tell me"))]
        backend = node.service.slots[ModelId("small")].backend
        assert [r.prompt for r in backend.seen] == ["tell me"]
    finally:
        await client.close()
        await node.stop()
