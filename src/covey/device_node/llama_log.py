"""llama.cpp's native log lines (``load_tensors: ...``, ``llama_context: ...``) into Python logging.

llama-cpp-python installs a callback that prints to stderr; covey replaces it with one that logs each
line at DEBUG on the ``covey.llama_cpp`` logger, so the terminal shows them only with ``-vv`` (or when a
library user asks for DEBUG), for a node and for the embedded in-process node alike.

With ``verbose=False`` llama-cpp-python also points file descriptors 1 and 2 (and sys.stdout/stderr) at
/dev/null while a model loads. That is process-wide: it swallows what other threads print meanwhile (the
CLI, another node's logs), and two loads on two threads can leave stdout pointing at /dev/null for good.
Once every native line goes through the callback there is nothing left for it to hide, so covey turns
that redirect into a no-op.
"""

from __future__ import annotations

import ctypes
import logging
import threading

logger = logging.getLogger("covey.llama_cpp")

_installed: object | None = None  # the ctypes callback; kept alive as long as llama.cpp may call it
_lock = threading.Lock()
_install_lock = threading.Lock()
_pending: list[str] = []


def _emit(level: int, text: bytes | None, _user_data: object) -> None:
    try:
        piece = (text or b"").decode("utf-8", errors="replace")
        with _lock:
            _pending.append(piece)
            if not piece.endswith("\n"):
                return  # llama.cpp continues a line in several calls (GGML_LOG_LEVEL_CONT, progress dots)
            line = "".join(_pending).rstrip("\n")
            _pending.clear()
        if line.strip():
            logger.debug("%s", line)
    except Exception:  # noqa: BLE001 - an exception must never cross back into C
        pass


def route_llama_logs() -> None:
    """Install the logging callback once per process (idempotent, thread-safe)."""
    global _installed
    with _install_lock:
        if _installed is not None:
            return
        import llama_cpp

        callback = llama_cpp.llama_log_callback(_emit)
        llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
        _installed = callback
        _keep_stdio()


class _NoRedirect:
    """Stands in for llama_cpp._utils.suppress_stdout_stderr (same signature, no fd juggling)."""

    def __init__(self, disable: bool = True) -> None:
        self.disable = disable

    def __enter__(self) -> _NoRedirect:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


def _keep_stdio() -> None:
    import importlib

    for name in ("llama_cpp.llama", "llama_cpp._internals"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "suppress_stdout_stderr"):
            module.__dict__["suppress_stdout_stderr"] = _NoRedirect
