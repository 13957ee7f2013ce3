"""This device's cluster identity on disk: DATA_DIR/cluster (0700), keys 0600, refused when looser.

    ca.pem        the cluster CA certificate (every member pins it)
    ca.key        the CA's private key (only on the host that ran `covey cluster init`)
    device.pem    this device's certificate, signed by the CA, bound to its node id
    device.key    this device's private key
    cluster.json  cluster id, the CA host's enrolment address (for renewals)
    issued.json   certificates the CA signed: serial, node id, name (CA host only)
    revoked.json  revoked serials and node ids, checked on every call
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from covey.cluster import pki
from covey.errors import ClusterError, NotPaired, UnsafeKeyFile

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
RENEW_BELOW = 1 / 3
"""A device certificate is renewed once less than this share of its validity is left."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class Revoked:
    serials: frozenset[int]
    node_ids: frozenset[str]

    def covers(self, *, serial: int | None = None, node_id: str | None = None) -> bool:
        return (serial is not None and serial in self.serials) or (node_id is not None and node_id in self.node_ids)


class ClusterStore:
    """Reads and writes the files of one device's cluster identity."""

    def __init__(self, data_dir: Path, *, clock: Clock = utcnow, cert_days: float = 90.0) -> None:
        self.dir = Path(data_dir) / "cluster"
        self.clock = clock
        self.cert_days = cert_days
        self._revoked: tuple[float, Revoked] | None = None

    # -- state -------------------------------------------------------------------------------------------

    def is_member(self) -> bool:
        return (self.dir / "device.pem").exists() and (self.dir / "device.key").exists() and self.has_ca()

    def has_ca(self) -> bool:
        return (self.dir / "ca.pem").exists()

    def is_authority(self) -> bool:
        return (self.dir / "ca.key").exists()

    def meta(self) -> dict:
        path = self.dir / "cluster.json"
        try:
            return json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError) as exc:
            raise ClusterError(f"{path} is unreadable ({exc})",
                               hint="restore it or pair this device again") from None

    def cluster_id(self) -> str:
        return str(self.meta().get("cluster_id", ""))

    def ca_cert(self) -> x509.Certificate:
        return pki.load_cert(self._read("ca.pem"))

    def ca_pem(self) -> bytes:
        return self._read("ca.pem")

    def device_cert(self) -> x509.Certificate:
        return pki.load_cert(self._read("device.pem"))

    def device_pem(self) -> tuple[bytes, bytes]:
        """(private key PEM, certificate PEM), the key checked for safe permissions."""
        return self._read_key("device.key"), self._read("device.pem")

    def ca_key(self):
        return pki.load_key(self._read_key("ca.key"))

    # -- creating ----------------------------------------------------------------------------------------

    def init(self, node_id: str, name: str, *, force: bool = False) -> x509.Certificate:
        """Create a cluster: a CA, and a certificate for this host (its orchestrator and any node it runs)."""
        if self.has_ca() and not force:
            raise ClusterError(f"{self.dir} already holds a cluster ({self.cluster_id() or 'unknown id'})",
                               hint="keep it, or pass --force to start a new cluster (every device must pair again)")
        self._prepare_dir()
        for stale in ("revoked.json", "issued.json"):
            (self.dir / stale).unlink(missing_ok=True)
        cluster_id = secrets.token_hex(4)
        ca_key, ca = pki.make_ca(cluster_id, self.clock())
        self._write("ca.key", pki.key_pem(ca_key), secret=True)
        self._write("ca.pem", pki.cert_pem(ca))
        self._write("cluster.json", json.dumps({"cluster_id": cluster_id}).encode())
        key = pki.new_key()
        cert = self.issue(key.public_key(), node_id=node_id, name=name)
        self.save_device(pki.key_pem(key), pki.cert_pem(cert))
        logger.info("created cluster %s", cluster_id)
        return ca

    def issue(self, public_key, *, node_id: str, name: str) -> x509.Certificate:
        """Sign a device certificate (CA host only) and note it in issued.json."""
        if not self.is_authority():
            raise ClusterError("only the host that ran `covey cluster init` can sign certificates",
                               hint="run this on the orchestrator's host")
        ca_key, ca = self.ca_key(), self.ca_cert()
        cert = pki.sign_device(ca_key, ca, public_key, node_id=node_id, cluster_id=self.cluster_id(),
                               now=self.clock(), days=self.cert_days)
        issued = self.issued()
        issued.append({"serial": str(cert.serial_number), "node_id": node_id, "name": name,
                       "not_after": cert.not_valid_after_utc.isoformat()})
        self._write("issued.json", json.dumps(issued, indent=1).encode())
        return cert

    def save_device(self, key_pem: bytes, cert_pem: bytes, *, ca_pem: bytes | None = None,
                    meta: dict | None = None) -> None:
        self._prepare_dir()
        if ca_pem is not None:
            self._write("ca.pem", ca_pem)
        if meta is not None:
            self._write("cluster.json", json.dumps({**self.meta(), **meta}).encode())
        self._write("device.key", key_pem, secret=True)
        self._write("device.pem", cert_pem)

    def issued(self) -> list[dict]:
        path = self.dir / "issued.json"
        return json.loads(path.read_text()) if path.exists() else []

    # -- renewal -----------------------------------------------------------------------------------------

    def needs_renewal(self) -> bool:
        return pki.remaining_fraction(self.device_cert(), self.clock()) < RENEW_BELOW

    def renew_locally(self) -> x509.Certificate:
        """A new key and certificate for this device, signed here (CA host)."""
        old = self.device_cert()
        key = pki.new_key()
        name = next((e["name"] for e in reversed(self.issued()) if e["serial"] == str(old.serial_number)), "")
        cert = self.issue(key.public_key(), node_id=pki.cert_node_id(old), name=name)
        self.save_device(pki.key_pem(key), pki.cert_pem(cert))
        logger.info("renewed this device's certificate until %s", cert.not_valid_after_utc.date())
        return cert

    # -- revocation --------------------------------------------------------------------------------------

    def revoke(self, who: str) -> list[dict]:
        """Revoke every certificate issued to the node named or with id ``who``; returns those entries."""
        hits = [e for e in self.issued() if who in (e["name"], e["node_id"])]
        if not hits:
            known = ", ".join(sorted({f"{e['name']} ({e['node_id']})" for e in self.issued()})) or "none"
            raise ClusterError(f"no device named {who!r} was paired from this host (paired: {known})",
                               hint="pass a name or node id from that list")
        current = self.revoked()
        data = {"serials": sorted({str(s) for s in current.serials} | {e["serial"] for e in hits}),
                "node_ids": sorted(set(current.node_ids) | {e["node_id"] for e in hits})}
        self._write("revoked.json", json.dumps(data, indent=1).encode())
        self._revoked = None
        return hits

    def revoked(self) -> Revoked:
        """The revocation list, re-read whenever the file changes (one stat per call)."""
        path = self.dir / "revoked.json"
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return Revoked(frozenset(), frozenset())
        if self._revoked is None or self._revoked[0] != mtime:
            try:
                data = json.loads(path.read_text())
                revoked = Revoked(frozenset(int(s) for s in data.get("serials", ())),
                                  frozenset(str(n) for n in data.get("node_ids", ())))
            except (OSError, ValueError) as exc:
                raise ClusterError(f"{path} is unreadable ({exc})", hint="fix or restore the file") from None
            self._revoked = (mtime, revoked)
        return self._revoked[1]

    def crl_pem(self) -> bytes:
        """The revocation list as an X.509 CRL signed by the CA (CA host only), for members to fetch."""
        now = self.clock()
        ca_key, ca = self.ca_key(), self.ca_cert()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
                   .last_update(now - dt.timedelta(minutes=5)).next_update(now + dt.timedelta(days=7)))
        for serial in sorted(self.revoked().serials):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build())
        return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def apply_crl(self, pem: bytes) -> int:
        """Adopt the serials of a CRL signed by this cluster's CA; returns how many were new."""
        try:
            crl = x509.load_pem_x509_crl(pem)
        except ValueError as exc:
            raise ClusterError(f"the revocation list is not a CRL ({exc})", hint="check the CA host") from None
        ca_key = self.ca_cert().public_key()
        if not isinstance(ca_key, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(ca_key):
            raise ClusterError("the revocation list is not signed by this cluster's CA",
                               hint="someone may be posing as the CA host; check `covey cluster serve` there")
        current = self.revoked()
        new = {r.serial_number for r in crl} - set(current.serials)
        if new:
            data = {"serials": sorted(str(s) for s in set(current.serials) | new),
                    "node_ids": sorted(current.node_ids)}
            self._write("revoked.json", json.dumps(data, indent=1).encode())
            self._revoked = None
        return len(new)

    # -- files -------------------------------------------------------------------------------------------

    def require_member(self) -> None:
        if not self.is_member():
            raise NotPaired(f"this device has no cluster identity in {self.dir}")

    def _prepare_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)

    def _check_dir(self) -> None:
        mode = stat.S_IMODE(self.dir.stat().st_mode)
        if mode & 0o077:
            raise UnsafeKeyFile(f"{self.dir} is open to other users (mode {mode:04o})",
                                hint=f"run `chmod 700 {self.dir}`, then retry")

    def _read(self, name: str) -> bytes:
        path = self.dir / name
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotPaired(f"this device has no cluster identity ({path} is missing)") from None

    def _read_key(self, name: str) -> bytes:
        path = self.dir / name
        self._check_dir()
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            raise NotPaired(f"this device has no cluster identity ({path} is missing)") from None
        if mode & 0o077:
            raise UnsafeKeyFile(f"the private key {path} is readable by other users (mode {mode:04o})",
                                hint=f"run `chmod 600 {path}`, then retry")
        return path.read_bytes()

    def _write(self, name: str, data: bytes, *, secret: bool = False) -> None:
        path = self.dir / name
        tmp = path.with_name(f".{name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o600 if secret else 0o644)
        os.replace(tmp, path)
