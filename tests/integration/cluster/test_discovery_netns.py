"""Real zeroconf inside a network namespace: only paired nodes enter the directory, with their own figures.

Three nodes announce on the namespace's loopback: a paired one, a node of another cluster, and a
paired member that announces the first node's id under another instance name with a wild speed
claim. The orchestrator's pool (built as `covey nodes` builds it) keeps only the first, at its own
address and with its own speed, and lists the node of the other cluster as foreign.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for netns.py

from netns import Netns  # noqa: E402

from .conftest import make_cluster, pair  # noqa: E402

HERE = Path(__file__).resolve().parent


class Lines:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.seen = proc, []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self._queue.put(json.loads(line))
        self._queue.put(None)

    def expect(self, match, timeout: float = 20.0, what: str = "") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                pytest.fail(f"process exited (rc={self.proc.poll()}) before {what}; saw {self.seen}")
            self.seen.append(item)
            if match(item):
                return item
        pytest.fail(f"no {what} within {timeout} s; saw {self.seen}")


def spawn(ns: Netns, script: str, *args: str) -> Lines:
    return Lines(ns.popen([sys.executable, str(HERE / script), *args], stdout=subprocess.PIPE, text=True))


def test_only_paired_nodes_are_kept_and_others_are_foreign(tmp_path: Path) -> None:
    ca = make_cluster(tmp_path / "laptop")
    pair(ca, tmp_path / "den", "node0001", "den-pc")
    pair(ca, tmp_path / "rogue", "node0002", "rogue")
    neighbour = make_cluster(tmp_path / "neighbour", node_id="orch9999")
    pair(neighbour, tmp_path / "theirs", "node0009", "their-pc")
    with Netns() as ns:
        browser = spawn(ns, "secure_browse.py", str(tmp_path / "laptop"))
        browser.expect(lambda e: e["kind"] == "ready", what="browser ready")
        real = spawn(ns, "lan_node.py", str(tmp_path / "den"), "node0001", "den-pc")
        real_port = real.expect(lambda e: e["event"] == "announced", what="real node announced")["port"]
        added = browser.expect(lambda e: e["kind"] == "added", what="the paired node")
        assert added["node_id"] == "node0001" and added["address"] == f"127.0.0.1:{real_port}"

        theirs = spawn(ns, "lan_node.py", str(tmp_path / "theirs"), "node0009", "their-pc", "--tps", "9999")
        theirs.expect(lambda e: e["event"] == "announced", what="foreign node announced")
        foreign = browser.expect(lambda e: e["kind"] == "refused", what="the other cluster's node refused")
        assert foreign["foreign"] and "not a member of this cluster" in foreign["reason"]

        rogue = spawn(ns, "lan_node.py", str(tmp_path / "rogue"), "node0002", "den-pc-2", "--announce-id", "node0001",
                      "--tps", "9999")
        rogue.expect(lambda e: e["event"] == "announced", what="spoofing node announced")
        spoof = browser.expect(lambda e: e["kind"] == "refused" and e["address"] != foreign["address"],
                               what="the spoofed id refused")
        assert spoof["foreign"]
        time.sleep(1.0)  # a health round or two: nothing may replace the real node
        kinds = [(e["kind"], e.get("node_id"), e.get("address"), e.get("tps")) for e in browser.seen
                 if e["kind"] in ("added", "updated", "removed")]
        assert all(k[1] == "node0001" and k[2] == f"127.0.0.1:{real_port}" and k[3] != 9999.0 for k in kinds), kinds
