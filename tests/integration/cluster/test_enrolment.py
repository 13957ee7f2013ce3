"""Pairing over a real TLS enrolment listener on 127.0.0.1: one use per code, expiry, pinning, renewal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from covey.cluster import pki
from covey.cluster.access import orchestrator_access
from covey.cluster.enrol import EnrolmentListener, join, renew, renew_if_due
from covey.cluster.invite import Invite
from covey.cluster.store import ClusterStore
from covey.errors import ClusterError, InviteInvalid, InviteRefused

from .conftest import make_cluster, start_node


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def listening(ca: ClusterStore, clock=None) -> EnrolmentListener:
    listener = EnrolmentListener(ca, host="127.0.0.1", port=0, **({"clock": clock} if clock else {}))
    await listener.start()
    return listener


async def test_a_device_joins_with_an_invite_and_then_serves_over_mutual_tls(ca: ClusterStore, tmp_path: Path) -> None:
    listener = await listening(ca)
    try:
        code = listener.open_invite("127.0.0.1", 600).code()
        assert len(code.replace("-", "")) == 40
        store = ClusterStore(tmp_path / "den")
        cert = await join(store, code, node_id="node0001", name="den-pc")
    finally:
        await listener.close()
    assert pki.cert_node_id(cert) == "node0001" and pki.issued_by(cert, ca.ca_cert())
    assert store.is_member() and store.cluster_id() == ca.cluster_id()
    assert [(j.node_id, j.name) for j in listener.joined] == [("node0001", "den-pc")]
    assert oct((store.dir / "device.key").stat().st_mode & 0o777) == "0o600"
    assert oct(store.dir.stat().st_mode & 0o777) == "0o700"
    node = await start_node(tmp_path / "den", "node0001", "den-pc")
    client = (await orchestrator_access(ca.dir.parent)).client_factory(node.address)
    try:
        assert (await client.info()).name == "den-pc"
    finally:
        await client.close()
        await node.stop()


async def test_an_invite_used_twice_is_refused(ca: ClusterStore, tmp_path: Path) -> None:
    listener = await listening(ca)
    try:
        code = listener.open_invite("127.0.0.1", 600).code()
        await join(ClusterStore(tmp_path / "first"), code, node_id="node0001", name="first")
        second = ClusterStore(tmp_path / "second")
        with pytest.raises(InviteRefused, match="already used"):
            await join(second, code, node_id="node0002", name="second")
        assert not second.is_member()
        assert [j.node_id for j in listener.joined] == ["node0001"]
    finally:
        await listener.close()


async def test_an_expired_invite_is_refused(ca: ClusterStore, tmp_path: Path) -> None:
    clock = Clock()
    listener = await listening(ca, clock)
    try:
        code = listener.open_invite("127.0.0.1", 600).code()
        clock.now += 601
        with pytest.raises(InviteRefused, match="expired"):
            await join(ClusterStore(tmp_path / "late"), code, node_id="node0001", name="late")
        assert listener.joined == [] and listener.pending() == 0
    finally:
        await listener.close()


async def test_a_made_up_secret_is_refused_and_many_close_every_invite(ca: ClusterStore, tmp_path: Path) -> None:
    listener = await listening(ca)
    try:
        real = listener.open_invite("127.0.0.1", 600)
        guess = Invite(real.host, real.port, real.pin, b"\0" * 8).code()
        with pytest.raises(InviteRefused, match="not one this cluster issued"):
            await join(ClusterStore(tmp_path / "guess"), guess, node_id="node0666", name="guess")
        for _ in range(19):
            with pytest.raises(InviteRefused):
                await join(ClusterStore(tmp_path / "guess"), guess, node_id="node0666", name="guess")
        with pytest.raises(InviteRefused, match="expired"):  # the real code is closed too now
            await join(ClusterStore(tmp_path / "real"), real.code(), node_id="node0001", name="real")
    finally:
        await listener.close()


async def test_a_listener_of_another_cluster_is_not_trusted(ca: ClusterStore, tmp_path: Path) -> None:
    impostor = make_cluster(tmp_path / "impostor", node_id="orch6666")
    listener = await listening(impostor)
    try:
        # The code names our CA; the listener at that address presents another CA.
        real_pin = pki.fingerprint(ca.ca_cert())
        code = Invite.new("127.0.0.1", listener.port, real_pin).code()
        store = ClusterStore(tmp_path / "den")
        with pytest.raises(ClusterError, match="CA fingerprint differs"):
            await join(store, code, node_id="node0001", name="den-pc")
        assert not store.is_member() and impostor.issued()[-1]["node_id"] == "orch6666"
    finally:
        await listener.close()


def test_codes_round_trip_and_typos_are_caught() -> None:
    invite = Invite("192.168.1.20", 50552, bytes(range(10)), bytes(range(100, 108)))  # fixed: typos are 1/256 blind
    code = invite.code()
    assert Invite.parse(code) == invite
    assert Invite.parse(code.upper().replace("-", " ")) == invite
    flipped = ("b" if code[3] != "b" else "c").join((code[:3], code[4:]))
    with pytest.raises(InviteInvalid, match="does not add up"):
        Invite.parse(flipped)
    with pytest.raises(InviteInvalid, match="40"):
        Invite.parse(code[:-6])
    with pytest.raises(InviteInvalid):
        Invite.parse("!!!!")


async def test_a_member_renews_at_the_ca_host_and_the_ca_host_renews_itself(ca: ClusterStore, tmp_path: Path) -> None:
    listener = await listening(ca)
    try:
        code = listener.open_invite("127.0.0.1", 600).code()
        store = ClusterStore(tmp_path / "den", cert_days=90)
        first = await join(store, code, node_id="node0001", name="den-pc")
        assert not store.needs_renewal()
        later = ClusterStore(tmp_path / "den", clock=lambda: first.not_valid_before_utc + dt.timedelta(days=61))
        assert later.needs_renewal()
        renewed = await renew(later)
        assert renewed.serial_number != first.serial_number and pki.cert_node_id(renewed) == "node0001"
        assert later.device_cert().serial_number == renewed.serial_number
        assert listener.joined[-1].renewal and listener.joined[-1].name == "den-pc"
        ca.revoke("den-pc")
        with pytest.raises(InviteRefused, match="revoked"):
            await renew(later)
    finally:
        await listener.close()
    own = ca.device_cert()
    aged = ClusterStore(ca.dir.parent, clock=lambda: own.not_valid_before_utc + dt.timedelta(days=70))
    await renew_if_due(aged)
    assert aged.device_cert().serial_number != own.serial_number


async def test_members_adopt_the_ca_hosts_signed_revocation_list_and_refuse_a_forged_one(
        ca: ClusterStore, tmp_path: Path) -> None:
    listener = await listening(ca)
    try:
        member = ClusterStore(tmp_path / "den")
        await join(member, listener.open_invite("127.0.0.1", 600).code(), node_id="node0001", name="den-pc")
        from covey.cluster.enrol import fetch_revocations

        assert await fetch_revocations(member) == 0
        stolen = ca.issue(pki.new_key().public_key(), node_id="node0007", name="stolen-laptop")
        ca.revoke("stolen-laptop")
        assert await fetch_revocations(member) == 1
        assert member.revoked().covers(serial=stolen.serial_number)  # the member's nodes refuse it from now on
        assert await fetch_revocations(member) == 0
    finally:
        await listener.close()
    forged = make_cluster(tmp_path / "forger", node_id="orch6666").crl_pem()
    with pytest.raises(ClusterError, match="not signed by this cluster's CA"):
        member.apply_crl(forged)


async def test_a_node_refuses_a_certificate_its_ca_host_revoked(ca: ClusterStore, tmp_path: Path) -> None:
    """End to end: revoke at the CA host, the node fetches the list, the revoked device's calls are refused."""
    from covey.cluster.access import orchestrator_access
    from covey.cluster.enrol import fetch_revocations
    from covey.errors import CertificateRevoked

    listener = await listening(ca)
    try:
        node_store = ClusterStore(tmp_path / "den")
        await join(node_store, listener.open_invite("127.0.0.1", 600).code(), node_id="node0001", name="den-pc")
        thief = ClusterStore(tmp_path / "thief")
        await join(thief, listener.open_invite("127.0.0.1", 600).code(), node_id="node0008", name="old-phone")
        node = await start_node(tmp_path / "den", "node0001", "den-pc")
        client = (await orchestrator_access(tmp_path / "thief")).client_factory(node.address)
        try:
            assert (await client.info()).node_id == "node0001"
            ca.revoke("old-phone")
            await fetch_revocations(node_store)
            with pytest.raises(CertificateRevoked):
                await client.info()
        finally:
            await client.close()
            await node.stop()
    finally:
        await listener.close()
