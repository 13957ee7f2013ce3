"""The README's Python runs as pasted, and `covey ask` in a pipe is clean: real router, embedded SmolLM2.

Discovery is off (COVEY_ORCHESTRATOR__DISCOVER=false) and the data dir is a tmp dir, so the embedded
node with the bundled SmolLM2 answers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[1].parent


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """One data dir for the module, so the second run reuses the router the first one trained and cached."""
    return tmp_path_factory.mktemp("readme-data")


def env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "COVEY_DATA_DIR": str(data_dir),
            "COVEY_ORCHESTRATOR__DISCOVER": "false", "COVEY_NODE__ANNOUNCE": "false", "COVEY_NODE__N_THREADS": "1",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "COVEY_ORCHESTRATOR__EMBEDDED_EXTRA_MODELS": "[]"}  # SmolLM2 alone, as the docstring says


def python_blocks() -> list[str]:
    """The README's python blocks, but those marked to need a running `covey serve`
    (tests/integration/api/test_serve_real.py runs them against one)."""
    text = (REPO / "README.md").read_text()
    return [m.group(2) for m in re.finditer(r"(<!-- serve-snippet -->\n)?```python\n(.*?)```", text, re.S)
            if not m.group(1)]


def test_the_readme_python_runs_as_pasted(tmp_path: Path, data_dir: Path) -> None:
    blocks = python_blocks()
    assert blocks, "the README has no python block"
    for i, code in enumerate(blocks):
        script = tmp_path / f"readme_{i}.py"
        script.write_text(code)
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600,
                              env=env(data_dir), cwd=tmp_path)
        assert done.returncode == 0, f"README block {i} failed:\n{code}\n--- stderr:\n{done.stderr[-3000:]}"
        assert "smollm2-135m-instruct-q4_1" in done.stdout and "embedded" in done.stdout, done.stdout


def test_ask_in_a_pipe_prints_json_alone_on_stdout_and_no_progress_bars(tmp_path: Path, data_dir: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "covey", "ask", "--json", "-"], input="Say hello in one sentence.",
                          capture_output=True, text=True, timeout=600, env=env(data_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    doc_md = (REPO / "docs" / "json.md").read_text()
    schema = json.loads(re.search(r"^## `covey ask --json`\n.*?```json\n(.*?)\n```", doc_md, re.S | re.M).group(1))
    jsonschema.validate(doc, schema)
    assert doc["node"] == "embedded" and doc["model"] == "smollm2-135m-instruct-q4_1" and doc["text"].strip()
    for noise in ("Loading weights", "it/s]", "%|", "Traceback"):
        assert noise not in done.stderr, done.stderr
