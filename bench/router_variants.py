"""Variants of the numpy MiniLM for the router benches (bench-local helper, not shipped).

`today_encode_one` is a frozen copy of the one-prompt path as it was before the in-place rewrite
(covey 88732b0), so bench_router.py can time today's router and the current one side by side in
one run. `shallower` builds the same model cut to its first layers and/or first tokens, for the
latency/quality trade-off rows (bench_router.py --numpy-only, bench_router_xsource.py --depth).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from covey.minilm import NAME, _Bert, blas_limiter


def _layer_norm_before(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu_before(x: np.ndarray) -> np.ndarray:
    z = x * np.float32(1 / np.sqrt(2))
    sign = np.sign(z)
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = sign * (1.0 - poly * np.exp(-a * a))
    return (0.5 * x * (1.0 + erf)).astype(np.float32)


def today_encode_one(bert: _Bert, text: str) -> np.ndarray:
    """The one-prompt path of covey 88732b0: a fresh temporary per elementwise operation."""
    ids = bert.tokenizer.encode(text).ids
    length, h, heads = len(ids), bert.hidden, bert.heads
    d = h // heads
    x = bert.word[ids] + bert.position[:length] + bert.token_type
    x = _layer_norm_before(x, *bert.emb_ln, bert.eps)
    for layer in bert.layers:
        qkv = x @ layer["qkv"][0]
        qkv += layer["qkv"][1]
        q = qkv[:, :h].reshape(length, heads, d).transpose(1, 0, 2)
        k = qkv[:, h:2 * h].reshape(length, heads, d).transpose(1, 2, 0)
        v = qkv[:, 2 * h:].reshape(length, heads, d).transpose(1, 0, 2)
        scores = q @ k
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        ctx = (scores @ v).transpose(1, 0, 2).reshape(length, h)
        attn = ctx @ layer["attn_out"][0]
        attn += layer["attn_out"][1]
        attn += x
        x = _layer_norm_before(attn, layer["attn_ln"][0], layer["attn_ln"][1], bert.eps)
        up = x @ layer["up"][0]
        up += layer["up"][1]
        down = _gelu_before(up) @ layer["down"][0]
        down += layer["down"][1]
        down += x
        x = _layer_norm_before(down, layer["out_ln"][0], layer["out_ln"][1], bert.eps)
    pooled = x.mean(axis=0)
    return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)


class _Capped:
    """A tokenizer whose encodings keep the first `max_tokens` ids ([CLS] ... [SEP] kept)."""

    class _Ids:
        def __init__(self, ids: list[int]) -> None:
            self.ids = ids

    def __init__(self, inner: Any, max_tokens: int) -> None:
        self.inner, self.max_tokens = inner, max_tokens

    def _cap(self, ids: list[int]) -> _Ids:
        return self._Ids(ids if len(ids) <= self.max_tokens else [*ids[: self.max_tokens - 1], ids[-1]])

    def encode(self, text: str) -> _Ids:
        return self._cap(self.inner.encode(text).ids)

    def encode_batch(self, texts: Sequence[str]) -> list[_Ids]:
        return [self._cap(e.ids) for e in self.inner.encode_batch(list(texts))]


def shallower(bert: _Bert, layers: int | None = None, max_tokens: int | None = None) -> _Bert:
    """The same weights, only the first `layers` encoder layers and/or the first `max_tokens` tokens."""
    out = copy.copy(bert)
    if layers is not None:
        out.layers = bert.layers[:layers]
    if max_tokens is not None:
        out.tokenizer = _Capped(bert.tokenizer, max_tokens)
    return out


def variant_name(layers: int | None, max_tokens: int | None) -> str:
    return NAME + (f"-L{layers}" if layers else "") + (f"-T{max_tokens}" if max_tokens else "")


def parse_variant(spec: str) -> tuple[int | None, int | None]:
    """'L3' -> (3, None), 'T32' -> (None, 32), 'L4T48' -> (4, 48)."""
    import re

    m = re.fullmatch(r"(?:L(\d))?(?:T(\d+))?", spec)
    if not m or not spec:
        raise SystemExit(f"bad variant {spec!r}: write L<layers>, T<tokens> or both, e.g. L3, T32, L4T48")
    return (int(m[1]) if m[1] else None), (int(m[2]) if m[2] else None)


class FnEmbedder:
    """An Embedder (name + embed) over a one-text function or a _Bert's batch encode."""

    def __init__(self, name: str, bert: _Bert, one: Callable[[str], np.ndarray] | None = None) -> None:
        self.name, self.bert, self.one = name, bert, one
        self._limit = blas_limiter(1)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        with self._limit():
            if self.one is not None and len(texts) == 1:
                return self.one(texts[0])[None, :]
            return np.concatenate([self.bert.encode(texts[i:i + 64]) for i in range(0, len(texts), 64)]) if texts \
                else np.zeros((0, self.bert.hidden), np.float32)
