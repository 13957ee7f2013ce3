"""The base install is a device node: a fresh venv with `pip install covey` (no extras) has no torch,
sentence-transformers, langgraph or faiss, and `covey node join` there serves SmolLM2 over gRPC.

Slow (about a minute): pip installs the base dependencies (llama-cpp-python from pip's wheel cache).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from covey.device_node.service import collect
from covey.orchestrator.client import GrpcNodeClient
from covey.types import GenerateRequest, Message, ModelId, RequestId, Sampling

ROOT = Path(__file__).resolve().parents[2]  # the checkout this test runs from
HEAVY = ("torch", "sentence_transformers", "langgraph", "faiss", "matplotlib", "transformers")


def project_copy(dest: Path) -> Path:
    """The project's build inputs copied out, so building a wheel leaves no build/ in the shared checkout."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("base-install")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    src = project_copy(tmp / "covey-src")
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", str(src)],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"pip install of the base package failed:\n{done.stdout}\n{done.stderr}"
    return venv


def test_base_install_has_no_heavy_dependencies(base_venv: Path) -> None:
    code = ("import importlib.util as u, json; "
            f"print(json.dumps([m for m in {HEAVY!r} if u.find_spec(m) is not None]))")
    out = subprocess.run([str(base_venv / "bin" / "python"), "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]", f"the base install pulled in heavy packages: {out}"


def test_base_install_cli_imports_without_the_orchestrator_extras(base_venv: Path) -> None:
    done = subprocess.run([str(base_venv / "bin" / "covey"), "node", "join", "--help"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, f"`covey node join --help` failed in the base install:\n{done.stderr}"
    assert "--max-model-ram-mb" in done.stdout


async def test_base_install_node_joins_and_serves_smollm(base_venv: Path, smollm_path: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVEY_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(COVEY_DATA_DIR=str(tmp_path / "data"), COLUMNS="400", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(
        [str(base_venv / "bin" / "covey"), "node", "join", "--port", "0", "--no-announce", "--no-bench",
         "--model", str(smollm_path.resolve()), "--name", "base-node"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"`covey node join` exited (rc={proc.wait()}) before ready:\n{''.join(seen)}\n"
                            f"{proc.stderr.read() if proc.stderr else ''}")
            seen.append(line)
            if line.strip() == "ready":
                break
        else:
            pytest.fail(f"no 'ready' line within 120 s; saw:\n{''.join(seen)}")
        match = re.search(r"serving on (127\.0\.0\.1:\d+)", "".join(seen))
        assert match, f"no address in the node's output: {seen}"
        client = GrpcNodeClient(match.group(1))
        try:
            info = await client.info()
            req = GenerateRequest(request_id=RequestId("base"), model_id=info.models[0].model_id, max_tokens=8,
                                  messages=(Message(role="user", content="Name a colour."),),
                                  sampling=Sampling(temperature=0.0))
            text, final = await collect(client.generate(req))
        finally:
            await client.close()
        assert info.name == "base-node" and info.models[0].model_id == ModelId(smollm_path.stem)
        assert text.strip() and final.completion_tokens > 0 and final.energy.joules > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    assert rc == 0, f"the node did not stop cleanly on SIGTERM (rc={rc})"
