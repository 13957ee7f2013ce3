"""Classifier heads on top of prompt vectors: softmax logistic regression, a one-hidden-layer
perceptron and nearest centroid.

All are plain numpy so fitting a few hundred examples takes milliseconds and a device node's
base install could still load a fitted head. Heads save to and load from a single .npz file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

HEADS = ("logistic", "mlp", "centroid")


class Head(Protocol):
    """Maps prompt vectors to class probabilities; `classes[i]` names column i."""

    kind: str
    classes: tuple[str, ...]

    def probabilities(self, x: np.ndarray) -> np.ndarray: ...

    def arrays(self) -> dict[str, np.ndarray]: ...


class LogisticHead:
    """Multinomial logistic regression with L2 penalty, fitted by full-batch gradient descent."""

    kind = "logistic"

    def __init__(self, classes: Sequence[str], weights: np.ndarray, bias: np.ndarray) -> None:
        self.classes = tuple(classes)
        self.weights = weights.astype(np.float32)
        self.bias = bias.astype(np.float32)

    @classmethod
    def fit(cls, x: np.ndarray, labels: Sequence[str], *, groups: Sequence[str] | None = None, l2: float = 1e-3,
            steps: int = 300, lr: float = 0.5) -> LogisticHead:
        """`groups` (e.g. each example's source) are weighted equally within each route, so one large
        source does not set the route's boundary for prompts written elsewhere."""
        classes = tuple(sorted(set(labels)))
        index = {c: i for i, c in enumerate(classes)}
        y = np.zeros((len(labels), len(classes)), dtype=np.float64)
        y[np.arange(len(labels)), [index[label] for label in labels]] = 1.0
        x64 = x.astype(np.float64)
        sample_w = balanced_weights(labels, groups)
        w = np.zeros((x.shape[1], len(classes)))
        b = np.zeros(len(classes))
        # Adam: robust to the very different scales of embedding dims and feature cues.
        mw, vw, mb, vb = (np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b))
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        n = len(labels)
        for t in range(1, steps + 1):
            p = _softmax(x64 @ w + b)
            err = (p - y) * sample_w[:, None] / n
            gw = x64.T @ err + l2 * w
            gb = err.sum(axis=0)
            mw = beta1 * mw + (1 - beta1) * gw
            vw = beta2 * vw + (1 - beta2) * gw * gw
            mb = beta1 * mb + (1 - beta1) * gb
            vb = beta2 * vb + (1 - beta2) * gb * gb
            step = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
            w -= step * mw / (np.sqrt(vw) + eps)
            b -= step * mb / (np.sqrt(vb) + eps)
        return cls(classes, w, b)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return _softmax(x @ self.weights + self.bias)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, "bias": self.bias}


class MLPHead:
    """One hidden ReLU layer and a softmax, fitted by full-batch Adam with the same balanced weights.

    Measured leave-one-source-out (bench/bench_router_xsource.py, mlp-nofb), it beat the logistic head
    on the public tuning sources with the old uniform cue weights (macro-F1 0.764 against 0.740); the
    logistic head with the material cues at half weight came as close (0.761) and fits in a fraction of
    the time, so it stays the default (`[router] head = "mlp"` picks this one)."""

    kind = "mlp"

    def __init__(self, classes: Sequence[str], w1: np.ndarray, b1: np.ndarray, w2: np.ndarray,
                 b2: np.ndarray) -> None:
        self.classes = tuple(classes)
        self.w1, self.b1 = w1.astype(np.float32), b1.astype(np.float32)
        self.w2, self.b2 = w2.astype(np.float32), b2.astype(np.float32)

    @classmethod
    def fit(cls, x: np.ndarray, labels: Sequence[str], *, groups: Sequence[str] | None = None, hidden: int = 256,
            l2: float = 1e-3, steps: int = 300, lr: float = 0.01, seed: int = 0) -> MLPHead:
        classes = tuple(sorted(set(labels)))
        index = {c: i for i, c in enumerate(classes)}
        n = len(labels)
        y = np.zeros((n, len(classes)))
        y[np.arange(n), [index[label] for label in labels]] = 1.0
        x64 = x.astype(np.float64)
        sample_w = balanced_weights(labels, groups)[:, None] / n
        rng = np.random.default_rng(seed)
        params = [rng.normal(0.0, np.sqrt(2.0 / x.shape[1]), (x.shape[1], hidden)), np.zeros(hidden),
                  rng.normal(0.0, np.sqrt(1.0 / hidden), (hidden, len(classes))), np.zeros(len(classes))]
        moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        for t in range(1, steps + 1):
            w1, b1, w2, b2 = params
            pre = x64 @ w1 + b1
            h = np.maximum(pre, 0.0)
            err = (_softmax(h @ w2 + b2) - y) * sample_w
            dh = (err @ w2.T) * (pre > 0)
            grads = [x64.T @ dh + l2 * w1, dh.sum(axis=0), h.T @ err + l2 * w2, err.sum(axis=0)]
            step = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
            for p, g, (m, v) in zip(params, grads, moments):
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                p -= step * m / (np.sqrt(v) + eps)
        return cls(classes, *params)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return _softmax(np.maximum(x @ self.w1 + self.b1, 0.0) @ self.w2 + self.b2)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"w1": self.w1, "b1": self.b1, "w2": self.w2, "b2": self.b2}


class CentroidHead:
    """Cosine similarity to each class's mean vector, turned into probabilities by a softmax."""

    kind = "centroid"

    def __init__(self, classes: Sequence[str], centroids: np.ndarray, temperature: float = 0.05) -> None:
        self.classes = tuple(classes)
        self.centroids = centroids.astype(np.float32)
        self.temperature = temperature

    @classmethod
    def fit(cls, x: np.ndarray, labels: Sequence[str]) -> CentroidHead:
        classes = tuple(sorted(set(labels)))
        labels_arr = np.asarray(labels)
        rows = [x[labels_arr == c].mean(axis=0) for c in classes]
        centroids = np.stack(rows)
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-12
        return cls(classes, centroids)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
        return _softmax((x / norms) @ self.centroids.T / self.temperature)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"centroids": self.centroids, "temperature": np.asarray(self.temperature)}


def balanced_weights(labels: Sequence[str], groups: Sequence[str] | None = None) -> np.ndarray:
    """Per-example weights (mean 1): every route has equal total weight and, with groups, every
    group has an equal share of each route it appears in."""
    labels_arr = np.asarray(labels)
    groups_arr = np.asarray(groups) if groups is not None else np.zeros(len(labels_arr), dtype=int)
    if len(groups_arr) != len(labels_arr):
        raise ValueError("labels and groups differ in length")
    w = np.zeros(len(labels_arr), dtype=np.float64)
    for route in np.unique(labels_arr):
        in_route = labels_arr == route
        cells = np.unique(groups_arr[in_route])
        for g in cells:
            cell = in_route & (groups_arr == g)
            w[cell] = 1.0 / (cell.sum() * len(cells))
    return w * len(w) / w.sum()


def fit_head(kind: str, x: np.ndarray, labels: Sequence[str], groups: Sequence[str] | None = None) -> Head:
    if kind == "logistic":
        return LogisticHead.fit(x, labels, groups=groups)
    if kind == "mlp":
        return MLPHead.fit(x, labels, groups=groups)
    if kind == "centroid":
        return CentroidHead.fit(x, labels)
    raise ValueError(f"unknown head {kind!r}; choose one of {', '.join(HEADS)}")


def out_of_fold(kind: str, x: np.ndarray, labels: Sequence[str], *, groups: Sequence[str] | None = None,
                folds: int = 5, seed: int = 0) -> np.ndarray:
    """Probabilities for every example from a head that never saw it (k-fold), columns sorted by class."""
    classes = tuple(sorted(set(labels)))
    order = np.random.default_rng(seed).permutation(len(labels))
    probs = np.zeros((len(labels), len(classes)), dtype=np.float32)
    labels_arr = np.asarray(labels)
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        head = fit_head(kind, x[train], list(labels_arr[train]),
                        None if groups is None else list(np.asarray(groups)[train]))
        cols = np.asarray([classes.index(c) for c in head.classes], dtype=np.int64)
        probs[np.ix_(test, cols)] = head.probabilities(x[test])
    return probs


def calibrate_threshold(probs: np.ndarray, truth: Sequence[int], *, grid: Sequence[float] | None = None,
                        floor: float = 0.2, ceiling: float = 0.6) -> float:
    """The confidence below which held-out predictions were right less than half the time.

    Under it the router's pick is more often wrong than right, so saying "unsure" is the honest answer.
    """
    grid = grid if grid is not None else [round(v, 2) for v in np.arange(floor, ceiling + 1e-9, 0.05)]
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == np.asarray(truth)
    best = floor
    for t in grid:
        below = conf < t
        if below.sum() >= 3 and right[below].mean() < 0.5:
            best = t
    return float(best)


def calibrate_fallback(probs: np.ndarray, truth: Sequence[int], fallback: int, *,
                       grid: Sequence[float] | None = None) -> float:
    """The confidence below which the fallback route was right more often than the head's own pick.

    Stricter than `calibrate_threshold`: a wrong pick is not enough, the fallback route must have been
    the better answer, since falling back swaps one guess for another. 0.0 when that never happened.
    """
    grid = grid if grid is not None else [round(v, 2) for v in np.arange(0.05, 0.6 + 1e-9, 0.05)]
    conf = probs.max(axis=1)
    truth_arr = np.asarray(truth)
    right = probs.argmax(axis=1) == truth_arr
    is_fallback = truth_arr == fallback
    best = 0.0
    for t in grid:
        below = conf < t
        if below.sum() >= 3 and is_fallback[below].mean() > right[below].mean():
            best = t
    return float(best)


def save_head(path: Path, head: Head, *, threshold: float, meta: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    arrays: dict[str, Any] = {"kind": np.asarray(head.kind), "classes": np.asarray(head.classes),
                              "threshold": np.asarray(threshold), "meta": np.asarray(meta), **head.arrays()}
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_head(path: Path) -> tuple[Head, float, str]:
    """A head saved by save_head, its fallback threshold and its metadata string."""
    with np.load(path, allow_pickle=False) as data:
        kind = str(data["kind"])
        classes = [str(c) for c in data["classes"]]
        head: Head
        if kind == "logistic":
            head = LogisticHead(classes, data["weights"], data["bias"])
        elif kind == "mlp":
            head = MLPHead(classes, data["w1"], data["b1"], data["w2"], data["b2"])
        elif kind == "centroid":
            head = CentroidHead(classes, data["centroids"], float(data["temperature"]))
        else:
            raise ValueError(f"unknown head kind {kind!r} in {path}")
        return head, float(data["threshold"]), str(data["meta"])


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
