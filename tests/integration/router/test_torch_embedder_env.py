"""The router's torch embedder loads the packaged MiniLM without touching the process environment."""

from __future__ import annotations

import os
import subprocess
import sys

LOAD_AND_REPORT = """
import os
from covey.router.embedding import PackagedMiniLM
vectors = PackagedMiniLM(threads=1).embed(["What is 17 times 23?"])
print(vectors.shape, os.environ.get("HF_HUB_OFFLINE"))
"""


def test_loading_the_torch_minilm_leaves_hf_hub_offline_unset() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    done = subprocess.run([sys.executable, "-c", LOAD_AND_REPORT], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == "(1, 384) None"  # loaded from the wheel's folder, environment untouched
