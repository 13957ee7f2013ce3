"""The cluster's certificates: a private CA, device certificates that bind a node id, CSRs, fingerprints.

Keys are ECDSA P-256 (fast handshakes, small certificates). A device certificate's subject common
name is its node id and its organisational unit the cluster id; it carries two DNS names:
``member.covey`` (any member, used before the peer's id is known) and ``n<hash>.node.covey``
(only this node id), so a client that expects node X refuses every other member's certificate.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MEMBER_NAME = "member.covey"
"""DNS name in every member's certificate: a TLS peer is some member of this cluster."""

CA_YEARS = 10


def node_server_name(node_id: str) -> str:
    """The DNS name only node ``node_id``'s certificate carries (a valid label whatever the id looks like)."""
    return f"n{hashlib.sha256(node_id.encode()).hexdigest()[:24]}.node.covey"


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("not an EC private key")
    return key


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def fingerprint(cert: x509.Certificate) -> bytes:
    """SHA-256 of the certificate's DER bytes."""
    return cert.fingerprint(hashes.SHA256())


def fingerprint_text(cert: x509.Certificate) -> str:
    return ":".join(f"{b:02X}" for b in fingerprint(cert))


def make_ca(cluster_id: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "covey"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"covey cluster {cluster_id}")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_csr(key: ec.EllipticCurvePrivateKey, node_id: str) -> x509.CertificateSigningRequest:
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)]))
            .sign(key, hashes.SHA256()))


def csr_pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


def load_csr(pem: bytes) -> x509.CertificateSigningRequest:
    csr = x509.load_pem_x509_csr(pem)
    if not csr.is_signature_valid:
        raise ValueError("the signing request's signature does not match its key")
    return csr


def csr_node_id(csr: x509.CertificateSigningRequest) -> str:
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def sign_device(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, public_key, *, node_id: str,
                cluster_id: str, now: dt.datetime, days: float) -> x509.Certificate:
    """A certificate for one device (server and client use), bound to ``node_id``."""
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "covey"),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, cluster_id),
                         x509.NameAttribute(NameOID.COMMON_NAME, node_id)])
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject).public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(MEMBER_NAME),
                                                    x509.DNSName(node_server_name(node_id))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def cert_node_id(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, Exception):  # InvalidSignature is not a ValueError
        return False
    return True


def remaining_fraction(cert: x509.Certificate, now: dt.datetime) -> float:
    """Share of the certificate's validity still ahead (1.0 fresh, 0.0 expired)."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    total = (end - start).total_seconds()
    return max(0.0, min(1.0, (end - now).total_seconds() / total)) if total > 0 else 0.0
