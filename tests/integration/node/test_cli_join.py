"""`covey node join` as a user runs it (a real process on 127.0.0.1, no announcement): what it prints
when ready, and what it keeps off the terminal.

The ready lines confirm the power cap with the thread count chosen and give the energy method in one
line; llama.cpp's native log lines appear only with -vv (DEBUG); a second node on the same data dir
says which identity it took.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import SMOLLM

NATIVE = ("load_tensors:", "llama_context:", "llama_model_loader:", "print_info:", "llama_kv_cache")


class Join:
    """One `covey node join` process; `ready()` returns stdout up to the "ready" line."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "400"}
        env.pop("COVEY_DATA_DIR", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "covey.cli", "node", "join", "--no-announce", "--no-bench", "--port", "0",
             "--model", SMOLLM, "--data-dir", str(data_dir), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr = ""
        self._err: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self._err_pump = threading.Thread(target=self._pump_err, daemon=True)
        self._err_pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _pump_err(self) -> None:  # drained as it comes: -vv writes more than a pipe holds
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._err.append(line)

    def ready(self, timeout: float = 120.0) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                self.stop()  # fills self.stderr for the message
                pytest.fail(f"`covey node join` exited (rc={self.proc.returncode}) before ready:\n"
                            f"{''.join(seen)}\n{self.stderr}")
            seen.append(line.rstrip("\n"))
            if line.strip() == "ready":
                return seen
        self.stop()
        pytest.fail(f"no ready line within {timeout} s:\n{''.join(seen)}\n{self.stderr}")

    def stop(self) -> str:
        """SIGINT (as Ctrl-C), wait, and return stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._err_pump.join(10)
        self.stderr = "".join(self._err)
        return self.stderr


def test_join_confirms_the_power_cap_and_keeps_native_logs_and_the_energy_paragraph_off(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Join(data, "--power-cap-watts", "4")
    try:
        out = first.ready()
    finally:
        err = first.stop()
    text = "\n".join(out)
    cap = [line for line in out if line.startswith("power cap 4 W: ")]
    assert cap and "llama.cpp threads" in cap[0], text
    energy = [line for line in out if line.startswith("energy: ")]
    assert len(energy) == 1 and len(energy[0]) < 200, text  # one line, not the paragraph of every source
    assert "no RAPL" not in text
    for marker in NATIVE:
        assert marker not in text and marker not in err, f"{marker} leaked:\n{text}\n{err}"
    assert "Traceback" not in err


def test_verbose_join_shows_native_logs_and_a_second_node_on_the_data_dir_takes_its_own_identity(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Join(data)
    try:
        first_out = first.ready()
        second = Join(data, "-vv")
        try:
            second_out = second.ready()
        finally:
            second_err = second.stop()
    finally:
        first.stop()
    assert not any("own identity" in line for line in first_out)
    text = "\n".join(second_out)
    assert "another covey node is running on" in text and "takes its own identity" in text, text
    assert "(identity-2.json)" in text
    assert "covey.llama_cpp: llama_context:" in second_err  # -vv: llama.cpp's lines, through logging
    assert "energy: " in text and ("no RAPL" in text or "measured" in text)  # -v: the full paragraph
