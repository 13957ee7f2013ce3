"""Capability probe: what this device has (RAM, cores, accelerator, battery) and its stable identity."""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import socket
import sys
import uuid
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import psutil

from covey.types import Battery

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class HostFacts:
    ram_total_bytes: int
    ram_free_bytes: int
    cpu_cores: int
    accelerator: str
    battery: Battery


def read_host() -> HostFacts:
    vm = psutil.virtual_memory()
    return HostFacts(
        ram_total_bytes=int(vm.total),
        ram_free_bytes=int(vm.available),
        cpu_cores=psutil.cpu_count(logical=False) or psutil.cpu_count() or 1,
        accelerator=detect_accelerator(),
        battery=read_battery(),
    )


def detect_accelerator() -> str:
    if Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/version").exists():
        return "cuda"
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "metal"
    return ""


def read_battery() -> Battery:
    try:
        b = psutil.sensors_battery()
    except (NotImplementedError, OSError, AttributeError):
        b = None
    if b is None:
        return Battery(present=False)
    return Battery(present=True, on_battery=not bool(b.power_plugged), percent=float(b.percent))


@dataclass(frozen=True)
class NodeIdentity:
    node_id: str
    name: str


def load_identity(data_dir: Path, name: str | None = None) -> NodeIdentity:
    """The node id is made once per data directory (one per device) and kept across restarts."""
    return _identity_at(data_dir / "node" / "identity.json", name)


_NODE_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,63}$")


def _read_node_id(path: Path) -> str | None:
    """The node id kept in `path`; None when there is no file. A damaged file is moved aside with a warning
    (the node then takes a new id: peers see a new node, and a paired device must pair again)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        from covey.errors import CoveyError

        raise CoveyError(f"cannot read the node identity {path}: {exc.strerror}",
                         hint="check the file's permissions, or delete it to make a new node id") from None
    try:
        data = json.loads(raw.decode("utf-8"))
        node_id = data["node_id"] if isinstance(data, dict) else None
        if isinstance(node_id, str) and _NODE_ID.match(node_id):
            return node_id
        problem = "no valid 'node_id' string in it"
    except (UnicodeDecodeError, ValueError) as exc:
        problem = f"not JSON: {exc}"
    except KeyError:
        problem = "no 'node_id' in it"
    aside = path.with_name(path.name + ".damaged")
    with suppress(OSError):
        os.replace(path, aside)
    logger.warning("node identity %s is damaged (%s); moved it to %s and made a new node id", path, problem,
                   aside.name)
    return None


def _identity_at(path: Path, name: str | None) -> NodeIdentity:
    node_id = _read_node_id(path)
    if not node_id:
        node_id = uuid.uuid4().hex[:16]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"node_id": node_id}))
        os.replace(tmp, path)
    return NodeIdentity(node_id=node_id, name=name or socket.gethostname().split(".")[0] or "node")


MAX_IDENTITIES = 64


class IdentityClaim:
    """A node identity held by one running node: a lock beside its identity file, kept until `release()`.

    The lock is an advisory lock on an open file (flock, or msvcrt on Windows), so the operating system
    drops it when the process ends, however it ends; two nodes in one process conflict too.
    """

    def __init__(self, identity: NodeIdentity, path: Path, fd: int, note: str = "") -> None:
        self.identity = identity
        self.path = path
        self.note = note
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with suppress(OSError):
                _unlock(fd)
            with suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


def _holder(lock: Path) -> str:
    try:
        pid = lock.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def claim_identity(data_dir: Path, name: str | None = None) -> IdentityClaim:
    """This data directory's node identity for a running node, or an identity of its own.

    The first node running on a data directory takes DATA_DIR/node/identity.json. A second one at the
    same time (a `covey node join` beside `covey ask`'s embedded node, or several in-process nodes)
    takes identity-2.json, identity-3.json, ...: an id of its own, kept across restarts like the first,
    so peers never see two nodes with one id. `note` then says which identity was taken and why.
    """
    base = data_dir / "node"
    base.mkdir(parents=True, exist_ok=True)
    busy: list[str] = []
    for k in range(1, MAX_IDENTITIES + 1):
        path = base / ("identity.json" if k == 1 else f"identity-{k}.json")
        lock = path.with_suffix(".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            busy.append(f"{path.name}{_holder(lock)}")
            continue
        with suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        identity = _identity_at(path, name)
        note = ""
        if busy:
            note = (f"another covey node is running on {data_dir} with {busy[0]}; this node takes its own "
                    f"identity {identity.node_id} ({path.name})")
        return IdentityClaim(identity, path, fd, note)
    from covey.errors import CoveyError

    raise CoveyError(f"{MAX_IDENTITIES} covey nodes are already running on {data_dir}",
                     hint="stop some of them, or give this node its own --data-dir")
