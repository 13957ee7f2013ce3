"""The onnxruntime MiniLM (the router's default encoder) against the numpy one, on the packaged model.

Tolerances, measured on the 372 prompts bench/bench_router.py times: fp32 differs from numpy by at
most 2.2e-7 per component (float rounding), so the two share a name and fitted heads; int8 vectors
have cosine 0.992 on average and 0.962 at worst with numpy's, so they have heads of their own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from covey.embedding import MINILM
from covey.minilm import NumpyMiniLM
from covey.minilm_onnx import INT8_NAME, OnnxMiniLM, cached_graph
from covey.router.classifier import builtin_examples, load_default_router, shipped_heads_dir
from covey.router.embedding import router_encoder
from covey.router.features import split_prompt
from covey.router.vectors import read_vectors, text_key, vectors_file
from covey.settings import RouterSettings

TEXTS = [
    "What is 17 times 23?",
    "Translate 'good morning' into Portuguese",
    "Write a haiku about the sea at night",
    "TL;DR this: Our Q3 revenue grew 12% while costs fell, mostly thanks to the new warehouse in Lyon.",
    "def add(a, b): return a + b  # why does this fail on strings?",
    "Explique-moi la photosynthèse en deux phrases",
    "hi",
    "word " * 400,  # longer than the 256-token window: truncated alike
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def numpy_vectors() -> np.ndarray:
    return NumpyMiniLM(threads=1).embed(TEXTS)


def test_fp32_vectors_match_numpy_to_float_rounding(onnx_cache, numpy_vectors) -> None:
    onnx = OnnxMiniLM(onnx_cache, int8=False)
    assert onnx.name == MINILM  # same vectors, same heads
    batch = onnx.embed(TEXTS)
    one_by_one = np.concatenate([onnx.embed([t]) for t in TEXTS])
    assert np.abs(batch - numpy_vectors).max() < 1e-5
    assert np.abs(one_by_one - numpy_vectors).max() < 1e-5
    assert onnx.dim == 384 and onnx.max_tokens == 254 and onnx.count_tokens("hello world") == 2


def test_int8_vectors_stay_close_to_numpy_and_do_not_depend_on_the_batch(onnx_cache, numpy_vectors) -> None:
    onnx = OnnxMiniLM(onnx_cache, int8=True)
    assert onnx.name == INT8_NAME
    vectors = onnx.embed(TEXTS)
    cosine = (vectors * numpy_vectors).sum(axis=1)
    assert cosine.min() > 0.95 and cosine.mean() > 0.98, cosine
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(onnx.embed(TEXTS[2:3]), vectors[2:3])  # alone or among others: the same


def test_int8_weights_are_seven_bit_so_no_cpu_kernel_saturates(onnx_cache) -> None:
    """With 7-bit weights (|w| <= 64) the uint8 x int8 pair sums of non-VNNI x86 kernels fit in int16
    (2 * 255 * 64 < 32767), so every
    kernel onnxruntime may pick (AVX2, AVX-512, VNNI, AMX) computes the same vectors."""
    import onnx
    from onnx import numpy_helper

    from covey.embedding import minilm_dir

    path = cached_graph(Path(minilm_dir()).resolve(), onnx_cache, int8=True)
    weights = [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and t.name.endswith("_quantized")]
    assert len(weights) >= 6 * 4  # every layer's four weight matrices
    assert min(int(w.min()) for w in weights) >= -64 and max(int(w.max()) for w in weights) <= 64


def test_the_shipped_int8_vectors_are_what_the_int8_backend_computes(onnx_cache) -> None:
    """The shipped int8 head was fitted on these vectors: if the recipe changed without a new
    INT8_NAME, this fails (and `make router-heads` with a new name fixes it)."""
    shipped = read_vectors(vectors_file(shipped_heads_dir(), INT8_NAME))
    instructions = sorted({split_prompt(r.prompt).instruction for r in builtin_examples()})[::60]
    now = OnnxMiniLM(onnx_cache, int8=True).embed(instructions)
    then = np.stack([shipped[text_key(t)] for t in instructions]).astype(np.float32)
    cosine = (now * then).sum(axis=1) / np.linalg.norm(then, axis=1)
    assert cosine.min() > 0.999, cosine  # float16 storage, nothing more


def test_the_default_backend_is_onnx_int8_with_its_shipped_head(tmp_path) -> None:
    assert RouterSettings().backend == "auto"
    encoder = router_encoder("auto", threads=1, data_dir=tmp_path)
    assert isinstance(encoder, OnnxMiniLM) and encoder.name == INT8_NAME
    assert isinstance(router_encoder("onnx", threads=1, data_dir=tmp_path), OnnxMiniLM)
    router = load_default_router(tmp_path)
    assert router.embedder.name == INT8_NAME and router.encoder.startswith("onnx-int8 (onnxruntime ")
    assert not (tmp_path / "cache" / "router").exists()  # the shipped head was used: nothing fitted here
    assert router.classify("What is 17 times 23?").route == "math"
    assert router.classify("Translate 'good morning' into Portuguese").route == "translate"
