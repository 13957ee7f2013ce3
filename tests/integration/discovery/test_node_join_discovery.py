"""Real `covey node join` processes (real SmolLM2 model, real gRPC) discovered inside a namespace.

The orchestrator side is the real NodePool (zeroconf browser, grpc.health.v1 checks). Covers a node
joining, its identity surviving a restart, leaving with a goodbye on SIGTERM, dropping after kill -9,
and `covey nodes` printing the directory.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from conftest import spawn
from netns import Netns

MODEL = "smollm2-135m-instruct-q4_1"
COVEY = str(Path(sys.executable).with_name("covey"))


def join(ns: Netns, data_dir: Path, name: str) -> subprocess.Popen[str]:
    return ns.popen(
        [COVEY, "node", "join", "--host", "127.0.0.1", "--port", "0", "--interface", "127.0.0.1",
         "--model", MODEL, "--name", name, "--data-dir", str(data_dir), "--no-bench",
         "--announce"],  # the autouse fixture turns announcing off; inside the namespace it is safe
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def wait_ready(proc: subprocess.Popen[str]) -> str:
    """Read the node's stdout up to its `ready` line; returns what it printed."""
    assert proc.stdout is not None
    out = []
    for line in proc.stdout:
        out.append(line)
        if line.strip() == "ready":
            return "".join(out)
    raise AssertionError(f"node exited (rc={proc.wait()}) before ready:\n{''.join(out)}")


def test_real_nodes_join_restart_leave_and_die(netns: Netns, tmp_path: Path) -> None:
    browser = spawn(netns, "browse.py", "--grpc", "--interval", "0.3", "--failures", "2")
    browser.expect(lambda e: e["kind"] == "ready", what="browser ready")

    den = join(netns, tmp_path / "den", "den")
    attic = join(netns, tmp_path / "attic", "attic")
    printed = wait_ready(den)
    wait_ready(attic)
    browser.until(lambda seen: {e["name"] for e in seen if e["kind"] == "added"} == {"den", "attic"},
                  timeout=60, what="both nodes added")
    first = next(e for e in browser.seen if e["kind"] == "added" and e["name"] == "den")
    seen_attic = next(e for e in browser.seen if e["kind"] == "added" and e["name"] == "attic")
    assert first["models"] == [MODEL]
    assert first["address"] in printed  # the announced address is the one the node serves on
    assert first["node_id"] != seen_attic["node_id"]

    table = netns.run([COVEY, "nodes", "--discover", "--interface", "127.0.0.1", "--wait", "2"], timeout=60)
    assert table.returncode == 0, table.stdout + table.stderr
    for text in ("den", "attic", first["node_id"][:8], "zeroconf"):
        assert text in table.stdout, table.stdout

    den.send_signal(signal.SIGTERM)
    gone = browser.expect(lambda e: e["kind"] == "removed" and e["name"] == "den", timeout=30, what="den removed")
    assert gone["reason"] == "said goodbye"
    assert den.wait(timeout=30) == 0

    again = join(netns, tmp_path / "den", "den")  # same data dir: same device
    wait_ready(again)
    back = browser.expect(lambda e: e["kind"] == "added" and e["name"] == "den", timeout=60, what="den back")
    assert back["node_id"] == first["node_id"]

    attic.kill()
    dropped = browser.expect(lambda e: e["kind"] == "removed" and e["name"] == "attic", timeout=30, what="attic dropped")
    assert dropped["reason"] == "failed 2 health checks in a row"
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=30) == 0
