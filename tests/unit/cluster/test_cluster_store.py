"""The cluster identity on disk: permissions, refusal of loose keys, revocation list, the CA's certificates."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from covey.cluster import pki
from covey.cluster.store import ClusterStore
from covey.errors import ClusterError, NotPaired, UnsafeKeyFile


def test_init_makes_a_ca_and_this_hosts_certificate_with_safe_permissions(tmp_path: Path) -> None:
    store = ClusterStore(tmp_path)
    ca = store.init("orch0001", "laptop")
    assert store.is_member() and store.is_authority()
    assert ca.extensions.get_extension_for_class(pki.x509.BasicConstraints).value.ca
    cert = store.device_cert()
    assert pki.cert_node_id(cert) == "orch0001" and pki.issued_by(cert, ca)
    sans = cert.extensions.get_extension_for_class(pki.x509.SubjectAlternativeName).value.get_values_for_type(
        pki.x509.DNSName)
    assert sans == [pki.MEMBER_NAME, pki.node_server_name("orch0001")]
    assert (store.dir.stat().st_mode & 0o777) == 0o700
    for key in ("ca.key", "device.key"):
        assert ((store.dir / key).stat().st_mode & 0o777) == 0o600
    with pytest.raises(ClusterError, match="already holds a cluster"):
        store.init("orch0001", "laptop")
    old = store.cluster_id()
    store.init("orch0001", "laptop", force=True)
    assert store.cluster_id() != old


def test_a_key_or_directory_open_to_others_is_refused_with_the_fix(tmp_path: Path) -> None:
    store = ClusterStore(tmp_path)
    store.init("orch0001", "laptop")
    os.chmod(store.dir / "device.key", 0o644)
    with pytest.raises(UnsafeKeyFile, match=r"chmod 600 .*device.key"):
        store.device_pem()
    os.chmod(store.dir / "device.key", 0o600)
    os.chmod(store.dir, 0o755)
    with pytest.raises(UnsafeKeyFile, match=r"chmod 700 .*cluster"):
        store.device_pem()
    os.chmod(store.dir, 0o700)
    assert store.device_pem()[0].startswith(b"-----BEGIN PRIVATE KEY")


def test_no_identity_says_how_to_pair(tmp_path: Path) -> None:
    store = ClusterStore(tmp_path)
    assert not store.is_member()
    with pytest.raises(NotPaired, match="covey node join --invite"):
        store.require_member()


def test_revoke_by_name_or_id_is_seen_at_once_and_unknown_names_are_listed(tmp_path: Path) -> None:
    store = ClusterStore(tmp_path)
    store.init("orch0001", "laptop")
    cert = store.issue(pki.new_key().public_key(), node_id="node0001", name="den-pc")
    assert not store.revoked().covers(serial=cert.serial_number)
    with pytest.raises(ClusterError, match=r"den-pc \(node0001\)"):
        store.revoke("kitchen")
    (hit,) = store.revoke("den-pc")
    assert hit["node_id"] == "node0001"
    assert store.revoked().covers(serial=cert.serial_number)
    assert ClusterStore(tmp_path).revoked().covers(node_id="node0001")  # another process reads the file
    assert not store.revoked().covers(node_id="orch0001")


def test_only_the_ca_host_signs(tmp_path: Path) -> None:
    ca = ClusterStore(tmp_path / "ca")
    ca.init("orch0001", "laptop")
    member = ClusterStore(tmp_path / "member")
    key = pki.new_key()
    member.save_device(pki.key_pem(key), pki.cert_pem(ca.issue(key.public_key(), node_id="n1", name="n")),
                       ca_pem=ca.ca_pem())
    with pytest.raises(ClusterError, match="only the host"):
        member.issue(pki.new_key().public_key(), node_id="n2", name="m")
