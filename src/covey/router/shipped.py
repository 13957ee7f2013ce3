"""The router heads shipped inside the package, so a first run fits nothing on the user's machine.

Each head is fitted here on the shipped examples (src/covey/data/routes) and saved under
src/covey/data/router_heads with the same key the router computes at start-up: a hash of the
examples, the embedder's name and the head kind (see `router.head_key`). A user who adds routes
or examples gets a different key, so the router fits and caches a head of their own; nothing
here needs to know what changed. Regenerate after editing the examples, the cue features or
the heads (tests/unit/router/test_shipped_head.py fails until you do)::

    make router-heads                              # or: python scripts/ship_router_heads.py
    python scripts/ship_router_heads.py --check    # exit 1 when they are stale
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from covey.embedding import Embedder
from covey.errors import ConfigError
from covey.router.classifier import (
    EmbeddingRouter,
    RouteExample,
    dedupe_examples,
    builtin_examples,
    head_file_name,
    head_key,
)
from covey.router.features import split_prompt
from covey.router.head import load_head
from covey.router.vectors import read_vectors, vectors_file, write_vectors
from covey.settings import RouterSettings

logger = logging.getLogger(__name__)

SHIPPED_HEADS: tuple[str, ...] = (RouterSettings.model_fields["head"].default,)
"""Head kinds shipped: the default one. Others are fitted on first use and cached in the data dir."""


def _numpy_minilm() -> Embedder:
    from covey.embedding import minilm

    return minilm()


def _onnx_minilm_int8() -> Embedder:
    """The onnx-int8 backend as a user's first run builds it; its session outlives the scratch cache."""
    import tempfile

    from covey.minilm_onnx import OnnxMiniLM

    with tempfile.TemporaryDirectory() as scratch:
        embedder = OnnxMiniLM(Path(scratch), int8=True, threads=1)
        embedder.load()
    return embedder


def _torch_minilm_int8() -> Embedder:
    from covey.router.embedding import PackagedMiniLM

    return PackagedMiniLM(int8=True, threads=1)


SHIPPED_EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "all-MiniLM-L6-v2-onnx-int8": _onnx_minilm_int8,  # the default backend (onnx-int8, "auto" with onnxruntime)
    "all-MiniLM-L6-v2": _numpy_minilm,  # numpy (auto's fallback), onnx fp32, and sentence-transformers' fp32
    "all-MiniLM-L6-v2-int8": _torch_minilm_int8,  # [router] backend = "torch" with int8
}
"""Embedder name -> how to build it, for every embedder a default install may route with. Keys depend on
the name only, so a backend whose vectors change must change its name (covey.minilm_onnx.INT8_NAME)."""

SHIPPED_VECTORS: tuple[str, ...] = ("all-MiniLM-L6-v2-onnx-int8", "all-MiniLM-L6-v2")
"""Embedders whose vectors of the shipped examples are shipped too (covey.router.vectors), so a refit
after a correction embeds only the new prompts: the default backend's and its fallback's, about 1 MB each
in float16."""


def _instruction_keys(rows: Sequence[RouteExample]) -> set[bytes]:
    from covey.router.vectors import text_key

    return {text_key(split_prompt(r.prompt).instruction) for r in dedupe_examples(rows)}


def expected(names: Iterable[str] = SHIPPED_EMBEDDERS, heads: tuple[str, ...] = SHIPPED_HEADS,
             examples: Sequence[RouteExample] | None = None) -> dict[str, tuple[str, str]]:
    """File name -> (head kind, embedder name) of every head that should be shipped.

    Keys depend on the embedder's name only, so checking freshness loads no model."""
    rows = builtin_examples() if examples is None else examples
    return {head_file_name(head_key(name, kind, rows)): (kind, name) for name in names for kind in heads}


def stale(folder: Path, names: Iterable[str] = SHIPPED_EMBEDDERS, heads: tuple[str, ...] = SHIPPED_HEADS,
          examples: Sequence[RouteExample] | None = None) -> list[str]:
    """What is wrong with the shipped heads in `folder`: missing, mismatched or left-over files."""
    rows = builtin_examples() if examples is None else examples
    want = expected(names, heads, rows)
    problems = []
    for name, (kind, embedder) in want.items():
        path = folder / name
        if not path.exists():
            problems.append(f"missing {name} ({kind} head on {embedder})")
            continue
        _head, _threshold, meta = load_head(path)
        if meta != head_key(embedder, kind, rows):
            problems.append(f"{name} was fitted on other examples")
    wanted_vectors = {vectors_file(folder, n).name: n for n in SHIPPED_VECTORS if n in set(names)}
    for file, embedder in wanted_vectors.items():
        have = set(read_vectors(folder / file))
        if not have:
            problems.append(f"missing {file} (vectors of the shipped examples on {embedder})")
        elif have != _instruction_keys(rows):
            problems.append(f"{file} holds vectors of other examples")
    present = {p.name for p in folder.glob("*.npz")} if folder.is_dir() else set()
    problems.extend(f"left-over {name}" for name in sorted(present - set(want) - set(wanted_vectors)))
    return problems


def regenerate(folder: Path, embedders: Mapping[str, Callable[[], Embedder]] = SHIPPED_EMBEDDERS,
               heads: tuple[str, ...] = SHIPPED_HEADS, *, examples: Sequence[RouteExample] | None = None,
               log: Callable[[str], None] = logger.info) -> list[Path]:
    """Fit every shipped head into `folder` and remove the files no configuration uses any more."""
    rows = builtin_examples() if examples is None else examples
    folder.mkdir(parents=True, exist_ok=True)
    want = expected(embedders, heads, rows)
    for name, (kind, embedder_name) in want.items():
        problems = [p for p in stale(folder, [embedder_name], (kind,), rows)
                    if not p.startswith(("left-over ", "missing vectors-")) and "holds vectors" not in p]
        if (folder / name).exists() and not problems:  # this head is fresh; vectors are seen to below
            log(f"{name}: fresh ({kind} head on {embedder_name})")
            continue
        embedder = embedders[embedder_name]()
        if embedder.name != embedder_name:
            raise ConfigError(f"the embedder built for {embedder_name!r} calls itself {embedder.name!r}",
                              hint="int8 needs torch's dynamic quantization; regenerate where it works")
        (folder / name).unlink(missing_ok=True)
        EmbeddingRouter.fit(embedder, rows, head=kind, cache_dir=folder)
        log(f"{name}: fitted {kind} head on {embedder_name}, {len(rows)} examples")
    keep = set(want)
    for embedder_name in SHIPPED_VECTORS:
        if embedder_name not in embedders:
            continue
        path = vectors_file(folder, embedder_name)
        keys = _instruction_keys(rows)
        have = read_vectors(path)
        if not keys <= set(have):  # heads were fresh but the vectors are not: embed what is missing
            from covey.router.vectors import CachedEmbedder

            CachedEmbedder(embedders[embedder_name](), path).embed(
                sorted({split_prompt(r.prompt).instruction for r in rows}))
            have = read_vectors(path)
        if set(have) != keys:
            write_vectors(path, {k: have[k] for k in keys})
            log(f"{path.name}: vectors of {len(keys)} shipped instructions on {embedder_name}")
        keep.add(path.name)
    for path in folder.glob("*.npz"):
        if path.name not in keep:
            path.unlink()
            log(f"removed stale {path.name}")
    return sorted(folder / n for n in want)
