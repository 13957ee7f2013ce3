"""API keys for `covey serve`: created once and shown once, stored only as SHA-256 hashes in DATA_DIR."""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import os
import secrets
import threading
from datetime import datetime, timezone
from pathlib import Path

from pydantic import Field

from covey.errors import ApiKeyError
from covey.types import Frozen

FILENAME = "api_keys.json"
PREFIX = "sk-covey-"


class ApiKey(Frozen):
    key_id: str = Field(description="short public id: the first 12 hex digits of the hash")
    name: str
    sha256: str
    created: datetime
    revoked: datetime | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    """The key file (DATA_DIR/api_keys.json, mode 0600). Keys are random, so an unsalted hash suffices."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._keys = self._read()

    def _read(self) -> list[ApiKey]:
        if not self.path.exists():
            return []
        try:
            return [ApiKey.model_validate(k) for k in json.loads(self.path.read_text())["keys"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ApiKeyError(f"cannot read the API key file {self.path}: {exc}",
                            hint="move the damaged file aside and create keys again") from exc

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"keys": [k.model_dump(mode="json") for k in self._keys]}, f, indent=2)
        os.replace(tmp, self.path)

    def create(self, name: str) -> tuple[ApiKey, str]:
        """A new key; the secret is returned once and never stored."""
        if not name.strip():
            raise ApiKeyError("a key needs a name", hint="e.g. `covey serve keys create laptop`")
        secret = PREFIX + secrets.token_urlsafe(32)
        digest = _hash(secret)
        key = ApiKey(key_id=digest[:12], name=name.strip(), sha256=digest, created=datetime.now(timezone.utc))
        with self._lock:
            self._keys.append(key)
            self._write()
        return key, secret

    def list(self) -> list[ApiKey]:
        return list(self._keys)

    def active(self) -> builtins.list[ApiKey]:
        return [k for k in self._keys if k.revoked is None]

    def revoke(self, key_id_or_name: str) -> ApiKey:
        with self._lock:
            matches = [k for k in self._keys if k.revoked is None and key_id_or_name in (k.key_id, k.name)]
            if len(matches) != 1:
                what = "no active key" if not matches else f"{len(matches)} active keys"
                raise ApiKeyError(f"{what} with id or name '{key_id_or_name}'")
            done = matches[0].model_copy(update={"revoked": datetime.now(timezone.utc)})
            self._keys = [done if k is matches[0] else k for k in self._keys]
            self._write()
        return done

    def verify(self, secret: str) -> ApiKey | None:
        """The active key this secret belongs to, or None. Re-reads the file so revocations apply at once."""
        with self._lock:
            try:
                self._keys = self._read()
            except ApiKeyError:
                return None
        digest = _hash(secret)
        found = None
        for k in self.active():
            if hmac.compare_digest(k.sha256, digest):
                found = k
        return found
