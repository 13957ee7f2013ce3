"""Several real node processes in a network namespace, found by zeroconf, driven by a real orchestrator:
routing to a specialist, delegation from a capped weak node, escalation on low confidence, and a node
killed mid-generation with the answer completed elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for netns.py

from netns import Netns  # noqa: E402

HERE = Path(__file__).resolve().parent
SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"


class Proc:
    def __init__(self, popen: subprocess.Popen[str]) -> None:
        self.p = popen
        self.lines: list[str] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            with self._cv:
                self.lines.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self.lines.append("<eof>")
            self._cv.notify_all()

    def wait_for(self, pred, timeout: float = 60.0) -> str:
        end = time.monotonic() + timeout
        seen = 0
        with self._cv:
            while True:
                for line in self.lines[seen:]:
                    if line == "<eof>":
                        pytest.fail(f"process exited (rc={self.p.poll()}); output: {self.lines}")
                    if pred(line):
                        return line
                seen = len(self.lines)
                left = end - time.monotonic()
                if left <= 0:
                    pytest.fail(f"timed out; output so far: {self.lines}")
                self._cv.wait(left)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, gemma_path):
    with Netns("covey-orch") as ns:
        root = tmp_path_factory.mktemp("cluster")
        specs = {"weak": ([SMOL], 260), "strong": ([SMOL, GEMMA], None), "spare": ([GEMMA], None)}
        nodes = {}
        for name, (models, cap) in specs.items():
            args = [sys.executable, "-m", "covey.cli", "node", "join", "--host", "127.0.0.1", "--port", "0",
                    "--interface", "127.0.0.1", "--name", name, "--data-dir", str(root / name), "--no-bench",
                    "--announce"]
            for m in models:
                args += ["--model", m]
            if cap:
                args += ["--max-model-ram-mb", str(cap)]
            nodes[name] = Proc(ns.popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        for n in nodes.values():
            n.wait_for(lambda line: line == "ready")
        cfg = {"pids": {k: v.p.pid for k, v in nodes.items()}, "nodes": 3}
        orch = Proc(ns.popen([sys.executable, str(HERE / "orch_in_netns.py"), json.dumps(cfg)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**__import__("os").environ, "COVEY_DATA_DIR": str(root / "orch")}))
        yield ns, nodes, orch
        orch.p.stdin.close()
        for p in [orch, *nodes.values()]:
            p.p.terminate()


def ask(orch: Proc, scenario: str) -> dict:
    orch.p.stdin.write(scenario + "\n")
    orch.p.stdin.flush()
    line = orch.wait_for(lambda l: l.startswith("{") and json.loads(l).get("scenario") == scenario, timeout=180)
    msg = json.loads(line)
    assert msg["kind"] == "result", msg
    return msg


def test_nodes_are_discovered_by_zeroconf(cluster):
    _, nodes, orch = cluster
    line = orch.wait_for(lambda l: '"discovered"' in l)
    msg = json.loads(line)
    assert msg["nodes"] == ["spare", "strong", "weak"] and msg["sources"] == ["zeroconf"]
    weak_out = " ".join(nodes["weak"].lines)
    assert "gemma" not in weak_out or "not serving" in weak_out


def test_routing_sends_math_to_the_math_specialist(cluster):
    msg = ask(cluster[2], "routing")
    r = msg["result"]
    assert r["route"] == "math" and "math" in r["agent"]
    assert r["text"].strip() and r["energy"]["joules"] > 0


def test_delegation_from_capped_weak_node(cluster):
    r = ask(cluster[2], "delegation")["result"]
    assert r["model"] == GEMMA and r["node"] in ("strong", "spare")
    assert any("allows 260 MB: delegated to" in n for n in r["notes"]), r["notes"]


def test_escalation_on_low_confidence(cluster):
    r = ask(cluster[2], "escalation")["result"]
    outcomes = [a["outcome"] for a in r["attempts"]]
    assert outcomes == ["escalated", "answered"], r["attempts"]
    assert r["attempts"][0]["model_id"] == SMOL and r["attempts"][1]["model_id"] == GEMMA
    assert r["energy"]["joules"] == pytest.approx(sum(a["energy"]["joules"] for a in r["attempts"])
                                                  + r["overhead"]["joules"])


def test_node_killed_mid_generation_answer_completes_elsewhere(cluster):
    msg = ask(cluster[2], "failover")
    r = msg["result"]
    assert msg["killed"] in ("strong", "spare")
    outcomes = [a["outcome"] for a in r["attempts"]]
    assert outcomes == ["failed_over", "answered"], r["attempts"]
    assert r["attempts"][0]["node_name"] == msg["killed"] and r["node"] != msg["killed"]
    before = r["attempts"][0]["text"]
    assert before and r["text"].startswith(before.lstrip()) and len(r["text"]) > len(before.lstrip())  # the result drops leading spaces
    assert any(n["kind"] == "failover" for n in msg["notices"])
