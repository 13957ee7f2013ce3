"""SetFit-style fine-tuning of MiniLM for bench_router_xsource.py (bench-only helper, not shipped).

Per fold: copy the packaged all-MiniLM-L6-v2, train it a few steps on sentence pairs drawn from
the training sources (cosine 1 for two prompts of one route, 0 for two routes; SetFit's recipe,
written as a plain torch loop so no `datasets` dependency is needed), re-embed every instruction,
and fit the class- and source-balanced logistic head on the new vectors plus the cues.
"""

from __future__ import annotations

import copy
import time

import numpy as np

from covey.router.classifier import FEATURE_SCALE

_BASE = None


def _base_model():
    global _BASE
    if _BASE is None:
        from sentence_transformers import SentenceTransformer

        from covey.embedding import minilm_dir

        _BASE = SentenceTransformer(str(minilm_dir()), device="cpu")
    return _BASE


def fine_tune(texts: list[str], labels: np.ndarray, sources: np.ndarray, steps: int, batch: int = 16, seed: int = 0):
    import torch

    rng = np.random.default_rng(seed)
    model = copy.deepcopy(_base_model())
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)
    by_route = {r: np.flatnonzero(labels == r) for r in np.unique(labels)}
    routes = list(by_route)
    # Source-balanced anchors: every source is drawn equally often, whatever its size.
    by_source = {s: np.flatnonzero(sources == s) for s in np.unique(sources)}
    src_names = list(by_source)
    for _ in range(steps):
        a_idx, b_idx, target = [], [], []
        for k in range(batch):
            a = int(rng.choice(by_source[src_names[rng.integers(len(src_names))]]))
            if k % 2 == 0:
                b = int(rng.choice(by_route[labels[a]]))
                target.append(1.0)
            else:
                other = routes[rng.integers(len(routes))]
                while other == labels[a]:
                    other = routes[rng.integers(len(routes))]
                b = int(rng.choice(by_route[other]))
                target.append(0.0)
            a_idx.append(a)
            b_idx.append(b)
        fa = model.tokenize([texts[i] for i in a_idx])
        fb = model.tokenize([texts[i] for i in b_idx])
        ea = model(fa)["sentence_embedding"]
        eb = model(fb)["sentence_embedding"]
        cos = torch.nn.functional.cosine_similarity(ea, eb)
        loss = torch.nn.functional.mse_loss(cos, torch.tensor(target))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model


def setfit_fold(data, steps: int):
    """A bench `fit(x, y, src)` that fine-tunes on the training rows (recognised by their labels and sources)."""
    from bench_router_xsource import sk_logistic

    texts = data.instructions

    def fit(x_train: np.ndarray, y_train: np.ndarray, src_train: np.ndarray):
        held = sorted(set(np.unique(data.sources)) - set(np.unique(src_train)))
        train_rows = np.flatnonzero(~np.isin(data.sources, held))
        t0 = time.perf_counter()
        model = fine_tune([texts[i] for i in train_rows], data.labels[train_rows], data.sources[train_rows], steps)
        vecs = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)
        x_all = np.hstack([vecs, FEATURE_SCALE * data.cues]).astype(np.float32)
        pred, classes, thr = sk_logistic(2.0, True)(x_all[train_rows], data.labels[train_rows], data.sources[train_rows])
        print(f"   (fold without {', '.join(held)}: fine-tuned {steps} steps and re-embedded in {time.perf_counter() - t0:.0f} s)")
        # The bench passes the frozen-MiniLM test rows; map them back to the fine-tuned vectors.
        test_rows = np.flatnonzero(np.isin(data.sources, held))

        def predict(x_test: np.ndarray) -> np.ndarray:
            assert len(x_test) == len(test_rows)
            return pred(x_all[test_rows])

        return predict, classes, thr

    return fit
