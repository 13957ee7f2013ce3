"""Invite codes: where to enrol, which CA to expect, and a one-time secret, in 40 typeable characters.

A code packs 25 bytes: the inviter's IPv4 address (4) and port (2), the first 10 bytes of the CA
certificate's SHA-256 fingerprint (the joiner pins it), an 8-byte one-time secret (the joiner proves
it knows it with an HMAC; the secret itself never travels) and a 1-byte checksum against typos.
They are written in base32 in groups of five: ``k7qsd-aaqbe-...``. Expiry and single use are
enforced by the inviter's listener, which alone knows which codes are open.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import secrets
import struct
from dataclasses import dataclass

from covey.errors import InviteInvalid

PIN_BYTES = 10
SECRET_BYTES = 8
_LAYOUT = struct.Struct(f"!4sH{PIN_BYTES}s{SECRET_BYTES}s")
CODE_LENGTH = 40
_CONFUSABLE = str.maketrans({"0": "O", "1": "L", "8": "B", "9": "G"})


@dataclass(frozen=True)
class Invite:
    host: str
    port: int
    pin: bytes
    secret: bytes

    @classmethod
    def new(cls, host: str, port: int, ca_fingerprint: bytes) -> Invite:
        return cls(host, port, ca_fingerprint[:PIN_BYTES], secrets.token_bytes(SECRET_BYTES))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def code(self) -> str:
        try:
            packed = ipaddress.IPv4Address(self.host).packed
        except ValueError:
            raise InviteInvalid(f"an invite needs an IPv4 address to enrol at, not {self.host!r}",
                                hint="pass --address with this host's IPv4 address on the LAN") from None
        payload = _LAYOUT.pack(packed, self.port, self.pin, self.secret)
        text = base64.b32encode(payload + _checksum(payload)).decode().rstrip("=").lower()
        return "-".join(text[i:i + 5] for i in range(0, len(text), 5))

    @classmethod
    def parse(cls, code: str) -> Invite:
        text = "".join(ch for ch in code.upper() if ch.isalnum()).translate(_CONFUSABLE)
        if len(text) != CODE_LENGTH:
            raise InviteInvalid(f"the invite code has {len(text)} letters and digits; a code has {CODE_LENGTH}")
        try:
            raw = base64.b32decode(text + "=" * (-len(text) % 8))
        except ValueError:
            raise InviteInvalid("the invite code contains characters that are not in an invite") from None
        payload, check = raw[:-1], raw[-1:]
        if _checksum(payload) != check:
            raise InviteInvalid("the invite code does not add up (a letter mistyped?)")
        packed, port, pin, secret = _LAYOUT.unpack(payload)
        return cls(str(ipaddress.IPv4Address(packed)), port, pin, secret)


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(b"covey-invite" + payload).digest()[:1]


def qr_text(code: str) -> str | None:
    """The code as a QR code in terminal characters, when segno is installed."""
    try:
        import io

        import segno
    except ImportError:
        return None
    out = io.StringIO()
    segno.make(code.upper(), error="m").terminal(out=out, compact=True)
    return out.getvalue()
