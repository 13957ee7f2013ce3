"""`covey demo` (what `make demo` runs) end to end with the bundled models: every question answered, the
tools' answers exact, delegation shown, fences paired, and the follow-up reading the right number."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1].parent


def test_the_demo_answers_every_question_and_its_follow_up(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COVEY_DATA_DIR": str(tmp_path / "data"),
           "COVEY_NODE__ANNOUNCE": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-m", "covey", "demo", "--no-discover"], capture_output=True, text=True, timeout=600,
                          env=env, cwd=tmp_path)
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]
    assert "17 times 23 = 391." in out and "391 plus 1 = 392." in out  # the follow-up reads the sum, not a log-prob
    # In a pipe, notices and summaries go to stderr, wrapped at 80 columns with a hanging indent.
    assert all(len(line) <= 80 for line in done.stderr.splitlines()), done.stderr
    said = done.stderr.replace("\n  ", " ")  # each line whole again
    assert "delegated to 'den-pc'" in said
    assert "Traceback" not in done.stderr and "I could not get this right" not in out, out
    assert sum(line.strip().startswith("```") for line in out.splitlines()) % 2 == 0, out  # fences paired
    assert said.count("· route ") == 6 and "done" in out.splitlines()[-1], out  # five questions, a follow-up
    assert said.count("answered by the calculator tool · ") == 2  # the sum and the follow-up: no model ran
