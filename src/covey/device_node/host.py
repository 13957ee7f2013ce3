"""Capability probe: what this device has (RAM, cores, accelerator, battery) and its stable identity."""

from __future__ import annotations

import json
import os
import platform
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

from covey.types import Battery


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
    path = data_dir / "node" / "identity.json"
    node_id = None
    if path.exists():
        try:
            node_id = json.loads(path.read_text())["node_id"]
        except (ValueError, KeyError, OSError):
            node_id = None
    if not node_id:
        node_id = uuid.uuid4().hex[:16]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"node_id": node_id}))
        os.replace(tmp, path)
    return NodeIdentity(node_id=node_id, name=name or socket.gethostname().split(".")[0] or "node")
