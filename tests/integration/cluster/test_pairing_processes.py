"""Pairing end to end in processes: `covey cluster init`, `cluster invite`, `node join --invite`, `node revoke`.

The node is real (SmolLM2 through llama.cpp) and serves on 127.0.0.1 over mutual TLS; the
orchestrator side is the init host's data dir.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from covey.cluster.access import orchestrator_access
from covey.errors import CertificateRevoked, NodeUnavailable
from covey.orchestrator.client import GrpcNodeClient
from covey.types import GenerateFinal, GenerateRequest, ModelId, RequestId

SMOLLM = "smollm2-135m-instruct-q4_1"
CODE = re.compile(r"\b([a-z2-7]{5}(?:-[a-z2-7]{5}){7})\b")


def covey(*args: str, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "covey.cli", *args, "--data-dir", str(data_dir)]


def env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "400", "HF_HUB_OFFLINE": "1", "COVEY_NODE__ANNOUNCE": "false",
            "COVEY_ORCHESTRATOR__DISCOVER": "false"}


def read_until(proc: subprocess.Popen[str], pattern: re.Pattern[str] | str, what: str) -> tuple[str, re.Match[str]]:
    assert proc.stdout is not None
    seen = ""
    for line in proc.stdout:
        seen += line
        match = re.search(pattern, line)
        if match:
            return seen, match
    proc.wait(10)
    pytest.fail(f"{what} never appeared; output so far:\n{seen}\nstderr:\n{proc.stderr.read() if proc.stderr else ''}")


async def test_init_invite_join_use_and_revoke(tmp_path: Path) -> None:
    host, device = tmp_path / "laptop", tmp_path / "den-pc"
    done = subprocess.run(covey("cluster", "init", data_dir=host), capture_output=True, text=True, env=env(),
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "CA fingerprint" in done.stdout

    inviter = subprocess.Popen(covey("cluster", "invite", "--host", "127.0.0.1", "--port", "0", "--ttl", "120",
                                     "--no-qr", data_dir=host), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env())
    node = None
    try:
        _, match = read_until(inviter, CODE, "an invite code")
        code = match.group(1)
        node = subprocess.Popen(covey("node", "join", "--invite", code, "--name", "den-pc", "--host", "127.0.0.1",
                                      "--port", "0", "--no-announce", "--no-bench", "--model", SMOLLM, data_dir=device),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**env(), "COVEY_NODE__N_THREADS": "1", "COVEY_NODE__N_CTX": "512"})
        seen, _ = read_until(node, r"^ready$", "the node's ready line")
        assert "paired with cluster" in seen
        address = re.search(r"serving on (127\.0\.0\.1:\d+)", seen).group(1)  # type: ignore[union-attr]
        out, errs = inviter.communicate(timeout=30)
        assert inviter.returncode == 0, errs
        assert "joined: " in out

        access = await orchestrator_access(host)
        client = access.client_factory(address)
        req = GenerateRequest(request_id=RequestId("p"), model_id=ModelId(SMOLLM), prompt="Hello", max_tokens=4)
        events = [ev async for ev in client.generate(req)]
        assert isinstance(events[-1], GenerateFinal) and events[-1].completion_tokens > 0
        with pytest.raises(NodeUnavailable):  # plaintext and no certificate: refused
            await GrpcNodeClient(address).info()

        listed = subprocess.run(covey("nodes", "--peer", address, "--no-discover", "--wait", "0", data_dir=host),
                                capture_output=True, text=True, env=env(), timeout=120)
        assert listed.returncode == 0, listed.stderr
        assert SMOLLM in listed.stdout

        revoked = subprocess.run(covey("node", "revoke", "den-pc", data_dir=host), capture_output=True, text=True,
                                 env=env(), timeout=60)
        assert revoked.returncode == 0, revoked.stderr
        with pytest.raises(CertificateRevoked):
            await client.info()
        await client.close()
    finally:
        for proc in (inviter, node):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
