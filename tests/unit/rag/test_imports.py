"""Importing covey.rag (e.g. from the CLI) must not pull torch, faiss or sentence-transformers."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_light() -> None:
    code = ("import sys, covey.rag, covey.rag.cli; "
            "print([m for m in ('torch', 'faiss', 'sentence_transformers', 'pypdf') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
