"""Pairing: the inviter's enrolment listener, and the joining device's side of the exchange.

The listener is a small TLS endpoint presenting the inviter's device certificate (signed by the
cluster CA). The exchange, one length-prefixed JSON message each way after the listener's hello:

    listener -> {"v": 1, "ca": CA PEM, "cluster_id": ...}
    joiner   checks sha256(CA) starts with the invite's pin and that the TLS peer's certificate is
             signed by that CA, so it talks to the real inviter; then sends
             {"kind": "join", "node_id", "name", "csr", "proof": HMAC(secret, pin + CSR)}
    listener checks the proof against its open invites (each used once, until it expires), signs a
             certificate binding the CSR's node id, and answers {"ok": true, "cert": PEM}.

A member renews its certificate the same way with {"kind": "renew", "csr"}, authenticated by its
current (unrevoked, unexpired) certificate instead of a secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from covey.cluster import pki
from covey.cluster.invite import Invite
from covey.cluster.store import ClusterStore
from covey.errors import ClusterError, CoveyError, InviteRefused, NodeUnavailable

logger = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024
MAX_FAILURES = 20
"""Wrong proofs before the listener closes every open invite (online guessing gets nowhere)."""
PROTOCOL = 1


def _proof(secret: bytes, pin: bytes, csr_pem: bytes) -> str:
    return hmac.new(secret, b"covey-join-v1\0" + pin + csr_pem, hashlib.sha256).hexdigest()


async def _send(writer: asyncio.StreamWriter, message: dict) -> None:
    data = json.dumps(message).encode()
    writer.write(struct.pack("!I", len(data)) + data)
    await writer.drain()


async def _recv(reader: asyncio.StreamReader) -> dict:
    (size,) = struct.unpack("!I", await reader.readexactly(4))
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes is too large")
    message = json.loads(await reader.readexactly(size))
    if not isinstance(message, dict):
        raise ValueError("message is not an object")
    return message


@dataclass
class _Open:
    invite: Invite
    expires: float
    used_by: str = ""


@dataclass(frozen=True)
class Joined:
    node_id: str
    name: str
    serial: int
    renewal: bool = False


@dataclass
class EnrolmentListener:
    """Serves pairing (and renewals) for the invites it opened, on ``host:port`` (0 picks a port)."""

    store: ClusterStore
    host: str = "127.0.0.1"
    port: int = 0
    clock: Callable[[], float] = time.monotonic
    joined: list[Joined] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._invites: list[_Open] = []
        self._server: asyncio.base_events.Server | None = None
        self._failures = 0
        self.changed = asyncio.Event()

    async def start(self) -> None:
        if not self.store.is_authority():
            raise ClusterError("only the host that ran `covey cluster init` can invite devices",
                               hint="run `covey cluster init` here first, or invite from the orchestrator's host")
        key_pem, cert_pem = self.store.device_pem()  # checks the key's permissions
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(self.store.dir / "device.pem", self.store.dir / "device.key")
        ctx.load_verify_locations(cadata=self.store.ca_pem().decode())
        ctx.verify_mode = ssl.CERT_OPTIONAL  # members renewing show their certificate; joiners have none yet
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=ctx)
        except OSError as exc:
            from covey.errors import PortInUse

            raise PortInUse(f"cannot listen for enrolments on {self.host}:{self.port} ({exc.strerror})") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("enrolment listener on %s:%d", self.host, self.port)

    def open_invite(self, advertise: str, ttl_s: float) -> Invite:
        invite = Invite.new(advertise, self.port, pki.fingerprint(self.store.ca_cert()))
        self._invites.append(_Open(invite, self.clock() + ttl_s))
        return invite

    def pending(self) -> int:
        now = self.clock()
        return sum(1 for o in self._invites if not o.used_by and o.expires > now)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            await _send(writer, {"v": PROTOCOL, "ca": self.store.ca_pem().decode(),
                                 "cluster_id": self.store.cluster_id()})
            request = await asyncio.wait_for(_recv(reader), 30)
            if request.get("kind") == "revoked":
                await _send(writer, self._revocations(writer.get_extra_info("ssl_object")))
                return
            try:
                cert = self._handle(request, writer.get_extra_info("ssl_object"))
            except CoveyError as exc:
                logger.warning("refused an enrolment from %s: %s", peer, exc.message)
                await _send(writer, {"ok": False, "error": exc.message})
            else:
                await _send(writer, {"ok": True, "cert": pki.cert_pem(cert).decode()})
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.TimeoutError, ssl.SSLError) as exc:
            logger.info("enrolment connection from %s failed: %s", peer, exc)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass

    def _handle(self, request: dict, ssl_object) -> x509.Certificate:
        try:
            csr_text = str(request["csr"])
            csr = pki.load_csr(csr_text.encode())
        except (KeyError, ValueError) as exc:
            raise InviteRefused(f"the request carries no valid certificate signing request ({exc})") from None
        node_id = pki.csr_node_id(csr)
        if not node_id or len(node_id) > 64:
            raise InviteRefused("the signing request names no usable node id")
        if request.get("kind") == "renew":
            return self._renew(csr, node_id, ssl_object)
        name = str(request.get("name") or node_id)[:63]
        slot = self._match(str(request.get("proof", "")), csr_text.encode())
        cert = self.store.issue(csr.public_key(), node_id=node_id, name=name)
        slot.used_by = node_id
        self.joined.append(Joined(node_id, name, cert.serial_number))
        self.changed.set()
        logger.info("paired %s (%s)", name, node_id)
        return cert

    def _match(self, proof: str, csr_pem: bytes) -> _Open:
        for slot in self._invites:
            if hmac.compare_digest(_proof(slot.invite.secret, slot.invite.pin, csr_pem), proof):
                if slot.used_by:
                    raise InviteRefused(f"this invite was already used (by node {slot.used_by})")
                if slot.expires <= self.clock():
                    raise InviteRefused("this invite has expired")
                return slot
        self._failures += 1
        if self._failures >= MAX_FAILURES:
            for slot in self._invites:
                slot.expires = 0
            logger.warning("%d wrong invite proofs: every open invite is closed", self._failures)
        raise InviteRefused("the invite code is not one this cluster issued (mistyped, or for another cluster)")

    def _revocations(self, ssl_object) -> dict:
        """The signed revocation list, for members only (their certificate was verified by the TLS layer)."""
        if ssl_object is None or not ssl_object.getpeercert(binary_form=True):
            return {"ok": False, "error": "the revocation list is for members of this cluster"}
        return {"ok": True, "crl": self.store.crl_pem().decode()}

    def _renew(self, csr, node_id: str, ssl_object) -> x509.Certificate:
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            raise InviteRefused("a renewal needs the device's current certificate")
        current = x509.load_der_x509_certificate(der)  # the TLS layer verified it against the CA
        if pki.cert_node_id(current) != node_id:
            raise InviteRefused(f"a certificate for {pki.cert_node_id(current)} cannot renew {node_id}")
        if self.store.revoked().covers(serial=current.serial_number, node_id=node_id):
            raise InviteRefused(f"the certificate of {node_id} was revoked")
        name = next((e["name"] for e in self.store.issued() if e["serial"] == str(current.serial_number)), node_id)
        cert = self.store.issue(csr.public_key(), node_id=node_id, name=name)
        self.joined.append(Joined(node_id, name, cert.serial_number, renewal=True))
        self.changed.set()
        return cert


# -- the joining side --------------------------------------------------------------------------------------

async def _exchange(host: str, port: int, ctx: ssl.SSLContext, build: Callable[[dict, ssl.SSLObject], dict],
                    timeout_s: float) -> tuple[dict, dict]:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx), timeout_s)
    except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
        raise NodeUnavailable(f"cannot reach the inviter at {host}:{port} ({exc or 'timed out'})",
                              hint="run `covey cluster invite` on the orchestrator's host and use the code "
                                   "while it waits; check both devices are on the same network") from None
    try:
        hello = await asyncio.wait_for(_recv(reader), timeout_s)
        await _send(writer, build(hello, writer.get_extra_info("ssl_object")))
        answer = await asyncio.wait_for(_recv(reader), timeout_s)
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.TimeoutError, ssl.SSLError) as exc:
        raise NodeUnavailable(f"the enrolment exchange with {host}:{port} broke off ({exc})") from None
    finally:
        writer.close()
    return hello, answer


def _client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False  # the inviter is pinned by its CA's fingerprint instead (below)
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def join(store: ClusterStore, code: str, *, node_id: str, name: str, timeout_s: float = 10.0) -> x509.Certificate:
    """Enrol this device with an invite code; its key, certificate and the CA land in ``store``."""
    invite = Invite.parse(code)
    key = pki.new_key()
    csr = pki.csr_pem(pki.make_csr(key, node_id))
    seen: dict[str, x509.Certificate] = {}

    def build(hello: dict, ssl_object) -> dict:
        ca = pki.load_cert(str(hello.get("ca", "")).encode())
        if not hmac.compare_digest(pki.fingerprint(ca)[: len(invite.pin)], invite.pin):
            raise ClusterError(f"the listener at {invite.address} is not the cluster this code is for "
                               "(its CA fingerprint differs)",
                               hint="check the code; someone may be posing as the inviter")
        leaf = x509.load_der_x509_certificate(ssl_object.getpeercert(binary_form=True))
        if not pki.issued_by(leaf, ca):
            raise ClusterError(f"the listener at {invite.address} shows a certificate its CA did not sign",
                               hint="someone may be posing as the inviter; ask for a new code")
        seen["ca"] = ca
        return {"kind": "join", "node_id": node_id, "name": name, "csr": csr.decode(),
                "proof": _proof(invite.secret, invite.pin, csr)}

    hello, answer = await _exchange(invite.host, invite.port, _client_context(), build, timeout_s)
    if not answer.get("ok"):
        raise InviteRefused(f"the inviter refused: {answer.get('error', 'no reason given')}")
    cert = _checked(answer, seen["ca"], node_id, key)
    store.save_device(pki.key_pem(key), pki.cert_pem(cert), ca_pem=pki.cert_pem(seen["ca"]),
                      meta={"cluster_id": str(hello.get("cluster_id", "")), "enrol_address": invite.address})
    logger.info("joined cluster %s as %s", hello.get("cluster_id"), node_id)
    return cert


def _spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _checked(answer: dict, ca: x509.Certificate, node_id: str, key) -> x509.Certificate:
    cert = pki.load_cert(str(answer.get("cert", "")).encode())
    if not pki.issued_by(cert, ca) or pki.cert_node_id(cert) != node_id or \
            _spki(cert.public_key()) != _spki(key.public_key()):
        raise ClusterError("the inviter sent back a certificate that is not for this device",
                           hint="ask for a new code and try again")
    return cert


def _member_context(store: ClusterStore) -> ssl.SSLContext:
    store.device_pem()  # the key's permissions are checked before it is used
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # pinned to the CA; the CA host's name is not in its certificate
    ctx.load_verify_locations(cadata=store.ca_pem().decode())
    ctx.load_cert_chain(store.dir / "device.pem", store.dir / "device.key")
    return ctx


def _enrol_address(store: ClusterStore) -> tuple[str, int]:
    address = str(store.meta().get("enrol_address", ""))
    if not address:
        raise ClusterError("this device does not know where its cluster's CA listens",
                           hint="pair again with a new invite")
    host, _, port = address.rpartition(":")
    return host, int(port)


async def fetch_revocations(store: ClusterStore, *, timeout_s: float = 5.0) -> int:
    """Adopt the CA host's signed revocation list (`covey cluster serve`); returns how many serials were new."""
    host, port = _enrol_address(store)
    _, answer = await _exchange(host, port, _member_context(store), lambda hello, ssl_object: {"kind": "revoked"},
                                timeout_s)
    if not answer.get("ok"):
        raise ClusterError(f"the CA host refused the revocation list: {answer.get('error', 'no reason given')}")
    return store.apply_crl(str(answer.get("crl", "")).encode())


async def follow_revocations(store: ClusterStore, interval_s: float) -> None:
    """Forever: fetch the CA host's revocation list every `interval_s` (a member node runs this as a task)."""
    while True:
        try:
            if new := await fetch_revocations(store):
                logger.warning("the CA host revoked %d more certificate(s); they are refused from now on", new)
        except CoveyError as exc:
            logger.debug("revocation list not fetched: %s", exc)
        await asyncio.sleep(interval_s)


async def renew(store: ClusterStore, *, timeout_s: float = 5.0) -> x509.Certificate:
    """Renew this member's certificate at the CA host's enrolment listener (``covey cluster serve``)."""
    host, port = _enrol_address(store)
    current = store.device_cert()
    node_id = pki.cert_node_id(current)
    ca = store.ca_cert()
    key = pki.new_key()
    csr = pki.csr_pem(pki.make_csr(key, node_id))
    ctx = _member_context(store)

    def build(hello: dict, ssl_object) -> dict:
        return {"kind": "renew", "csr": csr.decode()}

    _, answer = await _exchange(host, port, ctx, build, timeout_s)
    if not answer.get("ok"):
        raise InviteRefused(f"the CA host refused the renewal: {answer.get('error', 'no reason given')}")
    cert = _checked(answer, ca, node_id, key)
    store.save_device(pki.key_pem(key), pki.cert_pem(cert))
    return cert


async def renew_if_due(store: ClusterStore) -> None:
    """Renew this device's certificate when less than a third of its validity is left.

    The CA host signs its own; a member asks the CA host's listener (``covey cluster serve``) and,
    when that is not running, keeps its current certificate and says how long it still has.
    """
    if not store.needs_renewal():
        return
    if store.is_authority():
        store.renew_locally()
        return
    try:
        await renew(store)
        logger.info("renewed this device's certificate")
    except CoveyError as exc:
        left = store.device_cert().not_valid_after_utc - store.clock()
        logger.warning("this device's certificate expires in %s and could not be renewed: %s", left, exc)
