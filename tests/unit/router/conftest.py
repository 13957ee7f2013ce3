"""Fakes for router unit tests: a hashing bag-of-words embedder that records what it embedded."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import pytest

from covey.router.classifier import RouteExample


class HashingEmbedder:
    """Deterministic bag-of-words vectors (word hashes into 64 dims), L2-normalized."""

    name = "hashing-64"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


TOY = {
    "chat": ["hello how are you", "hi there friend", "good morning how are you today", "hey friend hello",
             "hello again friend", "how are you doing"],
    "math": ["what is 2 plus 2", "compute 17 times 3", "solve 3 x plus 2 equals 8", "what is 10 minus 4",
             "compute 9 times 9", "what is 5 plus 7"],
    "translate": ["translate cat into french", "translate hello into spanish", "how do you say dog in german",
                  "translate good night into italian", "translate house into french", "say thanks in spanish"],
    "summarize": ["summarize this text", "summarize the article below", "give me a summary of this text",
                  "summarize these notes", "short summary of this text please", "summarize the email below"],
}


@pytest.fixture
def toy_examples() -> list[RouteExample]:
    return [RouteExample(prompt=p, route=r) for r, ps in TOY.items() for p in ps]


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()
