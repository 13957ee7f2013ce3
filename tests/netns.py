"""Throw-away Linux network namespaces for tests that need real multicast (zeroconf/mDNS).

Real zeroconf must never touch the machine's interfaces, so every test that announces or browses
runs its processes inside a namespace created here: only a loopback with multicast switched on and
a route for 224.0.0.0/4, so mDNS packets go round inside the namespace and nowhere else.

    with Netns() as ns:
        node = ns.popen([sys.executable, "node_script.py"])
        ns.run(["dig", "-p", "5353", "@127.0.0.1", "_covey._tcp.local", "PTR"])

Leaving the block kills every process still in the namespace and deletes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any


class NetnsError(RuntimeError):
    pass


def require_root() -> None:
    """Fail (not skip) when namespaces cannot be created."""
    if os.geteuid() != 0:
        raise NetnsError("network-namespace tests need root (ip netns add); run them as root")


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetnsError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


class Netns:
    """A uniquely named network namespace with a multicast-capable loopback."""

    def __init__(self, prefix: str = "covey") -> None:
        self.name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._procs: list[subprocess.Popen[Any]] = []
        self._created = False

    def __enter__(self) -> Netns:
        self.create()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    def create(self) -> None:
        require_root()
        _ip("netns", "add", self.name)
        self._created = True
        try:
            _ip("-n", self.name, "link", "set", "lo", "up", "multicast", "on")
            _ip("-n", self.name, "route", "add", "224.0.0.0/4", "dev", "lo")
        except BaseException:
            self.destroy()
            raise

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` prefixed to run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *args]

    def popen(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a process inside the namespace; it is killed when the namespace is destroyed.

        ``ip netns exec`` execs the command, so the returned pid is the process itself and
        signals sent to it (SIGTERM, SIGKILL) reach the program directly.
        """
        proc = subprocess.Popen(self.command(args), **kwargs)
        self._procs.append(proc)
        return proc

    def run(self, args: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace to completion and capture its output."""
        return subprocess.run(self.command(args), capture_output=True, text=True, timeout=timeout, check=False)

    def pids(self) -> list[int]:
        done = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True, check=False)
        return [int(p) for p in done.stdout.split()]

    def destroy(self) -> None:
        """Kill the processes started here and any other process left in the namespace, then delete it."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if not self._created:
            return
        for _ in range(3):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        _ip("netns", "del", self.name)
        self._created = False


def veth_pair(a: Netns, b: Netns, subnet: str = "10.77.0") -> tuple[str, str]:
    """Link two namespaces like two hosts on one LAN; returns (address in a, address in b).

    Each end gets multicast and a 224.0.0.0/4 route, so mDNS crosses the link and only the link.
    """
    tag = uuid.uuid4().hex[:6]
    end_a, end_b = f"va{tag}", f"vb{tag}"
    _ip("link", "add", end_a, "type", "veth", "peer", "name", end_b)
    try:
        _ip("link", "set", end_a, "netns", a.name)
        _ip("link", "set", end_b, "netns", b.name)
    except BaseException:
        subprocess.run(["ip", "link", "del", end_a], capture_output=True, check=False)
        raise
    addresses = (f"{subnet}.1", f"{subnet}.2")
    for ns, end, addr in ((a, end_a, addresses[0]), (b, end_b, addresses[1])):
        _ip("-n", ns.name, "addr", "add", f"{addr}/24", "dev", end)
        _ip("-n", ns.name, "link", "set", end, "up", "multicast", "on")
        _ip("-n", ns.name, "route", "replace", "224.0.0.0/4", "dev", end)
    return addresses
