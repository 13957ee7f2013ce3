"""The onnxruntime encoder's graph cache (keyed, rebuilt when stale or damaged) and the fallback to numpy.

The cache is exercised on a one-MatMul graph built by the test (the mechanism does not depend on the
graph; the real MiniLM graph is tested in tests/integration/router/test_onnx_minilm.py)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from covey import minilm_onnx
from covey.errors import ConfigError
from covey.minilm import NumpyMiniLM
from covey.minilm_onnx import OnnxMiniLM, OnnxUnavailable, cache_key, cached_graph, open_session
from covey.router.embedding import describe_encoder, router_encoder

WEIGHT = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def tiny_graph():
    """x [n, 4] -> x @ WEIGHT: small enough to build and quantize in milliseconds."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
        [numpy_helper.from_array(WEIGHT, "w")])
    return helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)])


class CountingBuilder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return tiny_graph()


@pytest.fixture
def model_folder(tmp_path) -> Path:
    """The files a cache key hashes (not a real model: the tiny graph stands for it)."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights v1")
    (folder / "config.json").write_text('{"model_type": "bert"}')
    return folder


def run(path: Path) -> np.ndarray:
    x = np.ones((2, 4), np.float32)
    return open_session(path, 1).run(None, {"x": x})[0]


@pytest.mark.parametrize("int8", [False, True])
def test_a_built_graph_is_reused_from_the_cache(tmp_path, model_folder, int8) -> None:
    build = CountingBuilder()
    first = cached_graph(model_folder, tmp_path / "cache", int8=int8, build=build)
    again = cached_graph(model_folder, tmp_path / "cache", int8=int8, build=build)
    assert first == again and build.calls == 1
    assert first.name.startswith(f"minilm-{'int8' if int8 else 'fp32'}-") and first.with_suffix(".json").exists()
    expected = np.ones((2, 4), np.float32) @ WEIGHT
    np.testing.assert_allclose(run(first), expected, rtol=0.02 if int8 else 1e-6, atol=0.02 if int8 else 1e-6)


def test_changed_model_files_build_a_new_graph_and_remove_the_stale_one(tmp_path, model_folder, caplog) -> None:
    build = CountingBuilder()
    old = cached_graph(model_folder, tmp_path / "cache", int8=False, build=build)
    (model_folder / "model.safetensors").write_bytes(b"weights v2")
    with caplog.at_level(logging.INFO, logger="covey.minilm_onnx"):
        new = cached_graph(model_folder, tmp_path / "cache", int8=False, build=build)
    assert new != old and build.calls == 2
    assert not old.exists() and not old.with_suffix(".json").exists()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([new.name, new.with_suffix(".json").name])
    assert f"removing the cached ONNX MiniLM {old.name}" in caplog.text


def test_another_onnxruntime_version_changes_the_key(model_folder, monkeypatch) -> None:
    before = cache_key(model_folder, int8=True)
    monkeypatch.setattr(minilm_onnx, "onnxruntime_version", lambda: "0.0.1")
    assert cache_key(model_folder, int8=True) != before
    assert cache_key(model_folder, int8=False) != cache_key(model_folder, int8=True)


@pytest.mark.parametrize("damage", ["bytes", "manifest"])
def test_a_damaged_cached_graph_is_rebuilt_with_a_warning(tmp_path, model_folder, caplog, damage) -> None:
    build = CountingBuilder()
    path = cached_graph(model_folder, tmp_path / "cache", int8=True, build=build)
    if damage == "bytes":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte: it may still parse, but it is not what was built
        path.write_bytes(bytes(data))
    else:
        path.with_suffix(".json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="covey.minilm_onnx"):
        again = cached_graph(model_folder, tmp_path / "cache", int8=True, build=build)
    assert again == path and build.calls == 2
    assert f"the cached ONNX MiniLM {path} is damaged" in caplog.text
    assert cached_graph(model_folder, tmp_path / "cache", int8=True, build=build) == path and build.calls == 2
    np.testing.assert_allclose(run(path), np.ones((2, 4), np.float32) @ WEIGHT, atol=0.02)


def test_a_failing_build_leaves_no_file_behind(tmp_path, model_folder) -> None:
    def broken():
        raise ValueError("no such operator")

    with pytest.raises(OnnxUnavailable, match="building the fp32 ONNX MiniLM failed: ValueError: no such operator"):
        cached_graph(model_folder, tmp_path / "cache", int8=False, build=broken)
    assert list((tmp_path / "cache").iterdir()) == []


def test_without_onnxruntime_the_router_encoder_falls_back_to_numpy_once(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    monkeypatch.setattr(minilm_onnx, "_SESSIONS", {})
    monkeypatch.setattr(minilm_onnx, "_ONCE", set())
    with caplog.at_level(logging.INFO, logger="covey.minilm_onnx"):
        first = router_encoder("auto", threads=1, data_dir=tmp_path)
        second = router_encoder("auto", threads=1, data_dir=tmp_path)
    assert isinstance(first, NumpyMiniLM) and isinstance(second, NumpyMiniLM)
    lines = [r for r in caplog.records if "routing with MiniLM in numpy instead" in r.getMessage()]
    assert len(lines) == 1 and "onnxruntime is not installed" in lines[0].getMessage()
    assert lines[0].levelno == logging.INFO  # auto: expected on an install without onnxruntime
    with caplog.at_level(logging.WARNING, logger="covey.minilm_onnx"):
        assert isinstance(router_encoder("onnx-int8", threads=1, data_dir=tmp_path), NumpyMiniLM)
    asked = [r for r in caplog.records if "backend 'onnx-int8'" in r.getMessage()]
    assert asked and asked[0].levelno == logging.WARNING  # asked for by name: worth a warning
    assert describe_encoder(first) == "numpy (1 BLAS thread)"


def test_an_onnx_encoder_that_cannot_load_raises_onnx_unavailable(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setattr(minilm_onnx, "_SESSIONS", {})
    with pytest.raises(OnnxUnavailable, match="onnxruntime is not installed") as info:
        OnnxMiniLM(tmp_path).load()
    assert "backend = \"numpy\"" in str(info.value)


def test_the_numpy_backend_is_numpy_and_an_unknown_one_is_refused(tmp_path) -> None:
    assert isinstance(router_encoder("numpy", threads=1, data_dir=tmp_path), NumpyMiniLM)
    with pytest.raises(ConfigError, match="unknown router backend 'gpu'"):
        router_encoder("gpu", threads=1, data_dir=tmp_path)
