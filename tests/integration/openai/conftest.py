"""A REAL OpenAI-compatible server on 127.0.0.1: llama-cpp-python's own server serving the packaged SmolLM2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

SMOLLM = "smollm2-135m-instruct-q4_1"


@dataclass
class LlamaServer:
    url: str
    log: Path
    proc: subprocess.Popen

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(smollm_path, tmp_path_factory):
    """`python -m llama_cpp.server` on a free 127.0.0.1 port, the model aliased to its catalog id."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm_path), "--model_alias", SMOLLM,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    server = LlamaServer(url=f"http://127.0.0.1:{port}", log=log, proc=proc)
    try:
        _wait_until_serving(server, timeout_s=120)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_serving(server: LlamaServer, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if server.proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {server.proc.returncode}:\n{server.log_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/v1/models", timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"llama_cpp.server did not answer /v1/models within {timeout_s} s:\n{server.log_text()[-3000:]}")
