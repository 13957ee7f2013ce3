"""Two separate `covey ask --session` processes on a real SmolLM2: the second sees the first's turn."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SMOLLM = "smollm2-135m-instruct-q4_1"


def covey(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "covey.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_second_ask_process_continues_the_stored_session(covey_env, smollm_path):
    env = {**os.environ, "COVEY_NODE__SELF_BENCHMARK": "false", "COVEY_NODE__N_THREADS": "1",
           "COVEY_ORCHESTRATOR__EMBEDDED_MODEL": SMOLLM, "COVEY_ORCHESTRATOR__EMBEDDED_EXTRA_MODELS": "[]",
           "COLUMNS": "200"}  # SmolLM2 alone: one attempt per turn, so token counts compare
    first = covey("ask", "--no-discover", "--embedded", "always", "--session", "pets", "My cat is called Miso.",
                  env=env)
    assert first.returncode == 0, first.stderr
    second = covey("ask", "--no-discover", "--embedded", "always", "--session", "pets", "What is my cat called?",
                   env=env)
    assert second.returncode == 0, second.stderr
    logs = covey("logs", "--json", "-n", "0", env=env)
    assert logs.returncode == 0, logs.stderr
    turns = json.loads(logs.stdout)
    assert [(t["session"], t["prompt"]) for t in turns] == [
        ("pets", "My cat is called Miso."), ("pets", "What is my cat called?")]
    t1, t2 = turns
    assert all(t["node"] == "embedded" and t["model"] == SMOLLM and t["joules"] > 0 for t in turns)
    # the second process sent the first turn (prompt and answer) along; the two questions are the same length,
    # so the second prompt is the first plus at least the first answer
    assert t2["prompt_tokens"] >= t1["prompt_tokens"] + t1["completion_tokens"], turns
    assert f"{t2['prompt_tokens']} in" in second.stderr  # the summary line (on stderr) shows the grown prompt

    found = covey("logs", "-q", "Miso", "--session", "pets", env=env)
    assert found.returncode == 0 and "My cat is called Miso." in found.stdout and "session pets" in found.stdout
    missing = covey("logs", "-q", "Miso", "--session", "nobody", env=env)
    assert missing.returncode == 0 and "No turns match." in missing.stdout
