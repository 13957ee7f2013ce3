"""A short generation in a child process before a model is first served on this device.

llama.cpp's crashes are native (SIGSEGV in a CPU-specific kernel or weight-repack buffer): in-process
they take down the node, or `covey ask` with its embedded node. So the first time a model is loaded
with a given llama-cpp-python build on a given CPU, a child process loads it and decodes a few tokens;
if the child dies, the safe options are tried in another child, and the outcome of each try is kept in
DATA_DIR/cache/llama_canary.json so later starts skip the children.

Run as ``python -m covey.device_node.canary MODEL --extra-bufts 0|1 --threads N`` (the child side).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from covey.device_node.cpu import CpuFacts, WeightBuffers, choose_weight_buffers, read_cpu_facts
from covey.errors import NativeCrash

logger = logging.getLogger(__name__)

CACHE_FILE = Path("cache") / "llama_canary.json"
CRASH_ENV = "COVEY_TEST_CANARY_CRASH"
"""Test-only: `extra-bufts` makes a child with the extra buffers on die by a real SIGSEGV before its
first decode; `always` makes every child die. Read by the child only."""

LOAD_FAILED = 3  # the child's exit code when llama.cpp refused the file (a Python error, not a crash)


@dataclass(frozen=True)
class Attempt:
    use_extra_bufts: bool
    outcome: str  # "ok", "crashed (SIGSEGV)", "exit 3: ...", "timed out after 180 s"
    ok: bool = False
    native_crash: bool = False
    load_error: bool = False  # llama.cpp refused the file: no other option will load it either

    @property
    def definite(self) -> bool:
        """Worth remembering: it generated, or it died natively (a load error or timeout may pass)."""
        return self.ok or self.native_crash


@dataclass(frozen=True)
class CanaryVerdict:
    use_extra_bufts: bool
    reason: str
    cached: bool = False
    fell_back: bool = False
    ran: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        state = f"extra weight buffers {'on' if self.use_extra_bufts else 'off'}"
        return self.reason if self.reason.startswith(state) else f"{state}: {self.reason}"


ChildRunner = Callable[[Path, bool, int], Attempt]


def _option(use_extra_bufts: bool) -> str:
    return "extra_bufts_on" if use_extra_bufts else "extra_bufts_off"


def build_signature() -> str:
    """llama-cpp-python's version plus a hash of its native libraries and llama.cpp's system info.

    pip builds the wheel on the user's machine, so the same version string can be different code.
    """
    import llama_cpp
    from llama_cpp import llama_cpp as lib

    h = hashlib.sha256()
    lib_path = Path(getattr(getattr(lib, "_lib", None), "_name", "") or "")
    if lib_path.is_file():
        for f in sorted(lib_path.parent.iterdir()):
            if f.is_file() and any(s in f.name for s in (".so", ".dylib", ".dll")):
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    try:
        h.update(lib.llama_print_system_info())
    except (AttributeError, OSError):
        pass
    return f"{getattr(llama_cpp, '__version__', '?')}+{h.hexdigest()[:16]}"


def run_child(model_path: Path, use_extra_bufts: bool, n_threads: int, *, timeout_s: float = 180.0) -> Attempt:
    """Load and decode in `python -m covey.device_node.canary`; report how the child ended."""
    import covey

    cmd = [sys.executable, "-m", "covey.device_node.canary", str(model_path),
           "--extra-bufts", "1" if use_extra_bufts else "0", "--threads", str(n_threads)]
    env = dict(os.environ)
    src = Path(covey.__file__).resolve().parent.parent
    if src.name not in ("site-packages", "dist-packages"):  # a source tree on sys.path: the child needs it too
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH", "")) if p)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Attempt(use_extra_bufts, f"timed out after {timeout_s:g} s")
    tail = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()[-12:]
    logger.debug("canary child (%s) ended with %d after %.1f s; last lines:\n%s",
                 _option(use_extra_bufts), proc.returncode, time.monotonic() - t0, "\n".join(tail))
    if proc.returncode == 0:
        return Attempt(use_extra_bufts, "ok", ok=True)
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return Attempt(use_extra_bufts, f"crashed ({name})", native_crash=True)
    last = tail[-1] if tail else ""
    return Attempt(use_extra_bufts, f"exit {proc.returncode}: {last}"[:300], load_error=proc.returncode == LOAD_FAILED)


class LlamaCanary:
    """Decides llama.cpp's weight-buffer options per model on this CPU, proving them in child processes."""

    def __init__(self, data_dir: Path, setting: WeightBuffers = "auto", *, cpu: CpuFacts | None = None,
                 run_child: ChildRunner = run_child, signature: Callable[[], str] = build_signature) -> None:
        self.cache_path = data_dir / CACHE_FILE
        self.setting = setting
        self.cpu = cpu or read_cpu_facts()
        self._run_child = run_child
        self._signature = signature
        self.children = 0  # child processes started by this canary (tests and logs read it)

    def _key(self, model_path: Path) -> tuple[str, dict[str, str]]:
        st = model_path.stat()
        parts = {"llama_cpp": self._signature(), "cpu": self.cpu.model, "cpu_flags": self.cpu.flags_hash(),
                 "model": f"{model_path.resolve()}:{st.st_size}:{st.st_mtime_ns}"}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24], parts

    def _load_cache(self) -> dict:
        try:
            data = json.loads(self.cache_path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save_cache(self, cache: dict) -> None:
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
            os.replace(tmp, self.cache_path)
        except OSError as exc:  # a read-only data dir costs a canary per start, nothing more
            logger.warning("could not record the llama.cpp canary verdict in %s: %s", self.cache_path, exc)

    def check(self, model_path: Path, n_threads: int = 1) -> CanaryVerdict:
        """The options to load `model_path` with here; runs a child per untried option (none when cached).

        Raises NativeCrash when every option allowed by the setting crashed.
        """
        choice = choose_weight_buffers(self.setting, self.cpu)
        order = [choice.use_extra_bufts] + ([False] if choice.may_fall_back and choice.use_extra_bufts else [])
        key, parts = self._key(model_path)
        cache = self._load_cache()
        cached = cache.get(key)
        entry: dict = cached if isinstance(cached, dict) and cached else {**parts, "attempts": {}}
        given = entry.get("chosen")
        chosen: dict = given if isinstance(given, dict) else {}
        if chosen.get("use_extra_bufts") in order and entry["attempts"].get(_option(chosen["use_extra_bufts"])) == "ok":
            option = chosen["use_extra_bufts"]  # the verdict stands: no child, even for a try that once hung
            return CanaryVerdict(option, str(chosen.get("reason", choice.reason)), cached=True,
                                 fell_back=option != order[0])
        ran: list[str] = []
        crashes: list[str] = []
        failures: list[str] = []  # crashes and undecided tries, in order
        undecided: Attempt | None = None
        for option in order:
            outcome = entry["attempts"].get(_option(option))
            if outcome is None:
                self.children += 1
                attempt = self._run_child(model_path, option, n_threads)
                ran.append(f"{_option(option)}: {attempt.outcome}")
                logger.info("llama.cpp canary for %s with %s: %s", model_path.name, _option(option), attempt.outcome)
                if not attempt.definite:
                    undecided = undecided or attempt
                    failures.append(attempt.outcome)
                    if attempt.load_error:
                        break
                    continue
                outcome = attempt.outcome
                entry["attempts"][_option(option)] = outcome
            if outcome == "ok":
                fell_back = option != order[0]
                reason = (f"the first try ({_option(order[0])}) {failures[0]} in a child process; these options "
                          f"generate" if fell_back else choice.reason)
                entry["chosen"] = {"use_extra_bufts": option, "reason": reason, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
                cache[key] = entry
                self._save_cache(cache)
                if fell_back:
                    logger.warning("llama.cpp failed on this CPU with its extra weight buffers (%s); "
                                   "serving %s without them", failures[0], model_path.name)
                return CanaryVerdict(option, reason, cached=not ran, fell_back=fell_back, ran=tuple(ran))
            crashes.append(outcome)
            failures.append(outcome)
        if crashes:
            cache[key] = entry
            self._save_cache(cache)
        if undecided is not None or not crashes:
            # The child could not judge (llama.cpp refused the file, or it hung): nothing is remembered, and
            # the node loads with an option that did not crash (a refused file is then reported properly).
            option = undecided.use_extra_bufts if undecided is not None else order[-1]
            log = logger.info if undecided is not None and undecided.load_error else logger.warning
            log("the llama.cpp canary for %s could not decide (%s); loading with %s", model_path.name,
                undecided.outcome if undecided else "no try", _option(option))
            return CanaryVerdict(option, choice.reason, ran=tuple(ran))
        tried = "; ".join(f"{_option(o)} {c}" for o, c in zip(order, crashes))
        hint = ("set weight_buffers to auto or off (`--weight-buffers off`)" if self.setting == "on" else
                "try another model file or another llama-cpp-python build "
                "(`pip install --force-reinstall --no-cache-dir llama-cpp-python`)")
        raise NativeCrash(f"llama.cpp crashed in a child process generating with {model_path.name} on this CPU "
                          f"({self.cpu.model or 'unknown'}): {tried}", hint=hint)


def child_main(argv: list[str] | None = None) -> int:
    """The child: load the model with the given options and decode a few tokens; 0 when it generated."""
    p = argparse.ArgumentParser(prog="python -m covey.device_node.canary")
    p.add_argument("model", type=Path)
    p.add_argument("--extra-bufts", type=int, choices=(0, 1), required=True)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(message)s")
    from covey.device_node.backend import open_llama

    try:
        llm = open_llama(args.model, n_ctx=256, n_threads=args.threads, use_extra_bufts=bool(args.extra_bufts))
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"llama.cpp could not load {args.model}: {exc}", file=sys.stderr)
        return LOAD_FAILED
    crash = os.environ.get(CRASH_ENV, "")
    if crash == "always" or (crash == "extra-bufts" and args.extra_bufts):
        print(f"{CRASH_ENV}={crash}: dying by SIGSEGV before the first decode", file=sys.stderr, flush=True)
        ctypes.string_at(0)  # a real invalid read: the kernel sends SIGSEGV
    tokens = llm.tokenize(b"The sky is", add_bos=True)
    for n, _token in enumerate(llm.generate(tokens, top_k=1, temp=0.0), start=1):
        if n >= 4:
            break
    print("canary generated 4 tokens", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
