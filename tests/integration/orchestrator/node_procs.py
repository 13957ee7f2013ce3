"""Real `covey node join` processes on 127.0.0.1 (no announcement) and an orchestrator over them.

Each node is its own process serving SmolLM2 through llama.cpp, so a test can freeze it (SIGSTOP),
kill it (SIGKILL) or restart it on the same port and data dir (the same node id), as a user would.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from covey.settings import Settings

SMOLLM = "smollm2-135m-instruct-q4_1"
AGENT = "companion"  # pinned: the router never runs, the answer goes straight to placement
BRIEF = "brief"  # a user agent (agents.toml) for load: a short prompt, short answers, a long budget

BRIEF_TOML = f"""
[[agents]]
name = "{BRIEF}"
routes = ["chat"]
system_prompt = "Answer in one word."
ladder = ["{SMOLLM}"]
max_tokens = 16
latency_budget_s = 120.0

[agents.accept]
min_mean_logprob = -99.0
min_token_logprob = -99.0
"""


class NodeProc:
    """One node process; `address` is its 127.0.0.1 port, kept across `restart()`."""

    def __init__(self, data_dir: Path, name: str, *, queue_limit: int = 4, threads: int = 1) -> None:
        self.data_dir = data_dir
        self.name = name
        self.queue_limit = queue_limit
        self.threads = threads
        self.port = 0
        self.address = ""
        self.proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._err: list[str] = []

    def start(self) -> NodeProc:
        """Launch without waiting; `ready()` waits for the "ready" line (start several, then wait)."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "400",
               "COVEY_NODE__N_THREADS": str(self.threads)}
        env.pop("COVEY_DATA_DIR", None)
        self._lines = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "covey.cli", "node", "join", "--no-announce", "--no-bench",
             "--host", "127.0.0.1", "--port", str(self.port), "--model", SMOLLM, "--name", self.name,
             "--queue-limit", str(self.queue_limit), "--data-dir", str(self.data_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
        threading.Thread(target=self._pump, args=(self.proc, self._lines), daemon=True).start()
        threading.Thread(target=self._pump_err, args=(self.proc,), daemon=True).start()
        return self

    @staticmethod
    def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def _pump_err(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self._err.append(line)

    def ready(self, timeout: float = 120.0) -> NodeProc:
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"node {self.name} exited before ready:\n{''.join(seen)}\n{''.join(self._err)}")
            seen.append(line)
            found = re.search(r" serving on (127\.0\.0\.1):(\d+)", line)
            if found:
                self.address, self.port = f"{found[1]}:{found[2]}", int(found[2])
            if line.strip() == "ready":
                assert self.address, "".join(seen)
                return self
        pytest.fail(f"node {self.name} not ready within {timeout} s:\n{''.join(seen)}\n{''.join(self._err)}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """kill -9: no goodbye, no clean close."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def restart(self) -> NodeProc:
        """A new process on the same port and data dir (so the same node id), as a node brought back up."""
        assert self.proc is not None and self.proc.poll() is not None, "restart a node that has stopped"
        return self.start()

    def rss_mb(self) -> float:
        return psutil.Process(self.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        """Continue it if frozen, then SIGINT (as Ctrl-C), and SIGKILL if it does not exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.resume()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def start_nodes(tmp_path: Path, names: list[str], **kw) -> list[NodeProc]:
    nodes = [NodeProc(tmp_path / f"node-{n}", n, **kw).start() for n in names]
    try:
        for n in nodes:
            n.ready()
    except BaseException:
        for n in nodes:
            n.stop()
        raise
    return nodes


class PinnedOnly:
    """A router for answers that name their agent: it records any prompt it is asked to route (none)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def classify(self, text, history=()):
        from covey.router.classifier import RouteDecision

        self.seen.append(text)
        return RouteDecision(route="chat", confidence=1.0)


def orchestrator_settings(data_dir: Path, nodes: list[NodeProc], **orchestrator) -> Settings:
    """Static peers on 127.0.0.1, no discovery, no embedded node, no tool answers: every answer is a node's.

    The data dir holds the `brief` agent (agents.toml) besides the shipped ones."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "agents.toml").write_text(BRIEF_TOML)
    return Settings.load(data_dir=data_dir, orchestrator={
        "static_peers": [n.address for n in nodes], "discover": False, "embedded": "never",
        "health_interval_s": 0.5, "health_failures": 2, "tool_answers": False, "program_aided": False,
        "verify_answers": False, **orchestrator})


async def build_orchestrator(settings: Settings, want: int):
    """wiring.build (the real pool, ledger and history) once `want` nodes answered their health checks."""
    from covey import wiring

    router = PinnedOnly()
    orch = await wiring.build(settings, router=router)
    nodes = await orch.deps.pool.wait_for_nodes(30.0, want=want)
    assert len(nodes) == want, [n.name for n in nodes]
    return orch, router


def ledger_sessions(settings: Settings) -> list[str]:
    from covey.energy.ledger import Ledger

    ledger = Ledger(settings.data_dir / "ledger.db")
    try:
        return [r["session"] for r in ledger.query("SELECT session FROM answers")]
    finally:
        ledger.close()
