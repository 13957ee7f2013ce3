"""The numpy MiniLM (the router's fallback embedder, retrieval's default) against sentence-transformers, and the
shipped heads in use."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from covey.minilm import NumpyMiniLM

TEXTS = [
    "What is 17 times 23?",
    "Translate 'good morning, my friends' into French.",
    "hi",
    "Résumé: déjà vu, naïve café — 東京で会いましょう",
    " ".join(["Summarize this very long pasted paragraph about the history of the sea."] * 40),  # > 256 tokens
]


def test_numpy_vectors_match_sentence_transformers_fp32() -> None:
    from covey.router.embedding import PackagedMiniLM

    ours = NumpyMiniLM().embed(TEXTS)  # one padded batch
    theirs = PackagedMiniLM(threads=1).embed(TEXTS)
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    assert np.abs(ours - theirs).max() < 1e-4
    one_by_one = np.stack([NumpyMiniLM().embed([t])[0] for t in TEXTS])  # the one-prompt path
    assert np.abs(one_by_one - ours).max() < 1e-5  # padding and masks change nothing
    assert NumpyMiniLM().embed([]).shape == (0, 384)


ROUTE_IN_A_FRESH_PROCESS = """
import sys
from pathlib import Path
from covey.router.classifier import load_default_router
router = load_default_router(Path(sys.argv[1]))
print(router.embedder.name, router.classify("What is 17 times 23?").route,
      router.classify("Translate 'good morning' into French.").route, "torch" in sys.modules)
"""


def test_default_router_on_a_new_data_dir_fits_nothing_and_never_imports_torch(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-c", ROUTE_IN_A_FRESH_PROCESS, str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["all-MiniLM-L6-v2-onnx-int8", "math", "translate", "False"]  # backend "auto"
    assert not (tmp_path / "cache" / "router").exists()  # the shipped head was used, nothing fitted here


def test_default_numpy_router_meets_the_heldout_target(tmp_path) -> None:
    from pathlib import Path

    from covey.router.classifier import load_default_router, read_examples
    from covey.router.evaluation import score_routes
    from covey.settings import RouterSettings

    rows = read_examples(Path(__file__).parents[2] / "data" / "router_heldout.jsonl")
    router = load_default_router(tmp_path, RouterSettings(backend="numpy"))  # numpy MiniLM and its shipped head
    assert router.embedder.name == "all-MiniLM-L6-v2" and not (tmp_path / "cache").exists()
    decisions = router.classify_many([r.prompt for r in rows])
    report = score_routes([r.route for r in rows], [d.route for d in decisions])
    assert report.macro_f1 >= 0.85, report  # the same target as the int8 sentence-transformers router
