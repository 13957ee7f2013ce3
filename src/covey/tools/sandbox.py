"""A sandbox for model-written Python: a separate, locked-down process with limits and a clean environment.

Every run gets a fresh temporary directory (its working directory, HOME and TMPDIR, deleted after
the run), an environment with nothing of the caller's in it, no standard input, and the interpreter
in isolated mode without site-packages (``python -I -S``: the standard library only, unless
`site_packages=True`). The parent enforces a wall-clock timeout and an output cap and kills the
whole process group; the child (`covey.tools._jail`) locks itself down before the code runs:

============  =========================================================================================
rlimits       CPU seconds, address space (memory), file size, open files, processes; no core dumps
namespaces    Linux: new user, network and mount namespaces (no network at all, not even the host's
              loopback); works unprivileged where the kernel allows user namespaces
landlock      Linux >= 5.13: reads only Python's own files and system libraries, writes only the sandbox
              directory; ABI 4+: no TCP bind/connect; ABI 6+: no signals or abstract sockets outside
seccomp       Linux x86_64/aarch64: killed on fork/vfork/exec, any socket, ptrace, mount, unshare, bpf,
              io_uring, keyctl, module and clock calls; threads allowed; kill/tgkill/prlimit only on itself
audit         every platform: a Python audit hook that turns subprocess, os.system, sockets, ctypes and
              files outside the directory into a clear `SandboxViolation` (Python-level only, so never
              the only wall where the OS layers exist)
============  =========================================================================================

What is weaker where a layer is missing (`describe()` says which apply on this machine):

* macOS, BSD: no namespaces, Landlock or seccomp, and RLIMIT_AS is not enforced. Only the limits,
  the wall clock, the clean environment and the audit hook remain: code that gets past the audit
  hook (say through a CPython memory-corruption bug) can read the user's files and use the network.
* Termux / Android: apps get their own seccomp filter from Android, but user namespaces are
  usually refused, so the network is reachable at the OS level unless our seccomp filter applies.
* Linux without user namespaces (a distribution or container that disables them): no private
  network namespace; Landlock (kernel >= 5.13) and seccomp still apply when available.
* As root, RLIMIT_NPROC does not bind; the seccomp filter is then what stops a fork bomb.
* Without seccomp (other architectures, macOS), the code can start processes up to its process
  limit; those left in its process group are killed with the run, but one that calls setsid() and
  sleeps can outlive it (each such process is still bound by its own CPU and memory limits).
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from covey.errors import SandboxUnavailable
from covey.types import Frozen

logger = logging.getLogger(__name__)

JAIL = Path(__file__).with_name("_jail.py")
Outcome = Literal["ok", "error", "blocked", "timeout", "cpu", "memory", "output", "crashed"]
LAYERS = ("rlimits", "namespaces", "landlock", "seccomp", "audit")


class SandboxLimits(Frozen):
    wall_seconds: float = Field(10.0, gt=0.0, le=600.0, description="wall-clock time before the run is killed")
    cpu_seconds: int = Field(5, ge=1, le=600, description="CPU time before the run is killed")
    memory_mb: int = Field(256, ge=32, le=65536, description="address space the process may map")
    processes: int = Field(0, ge=0, le=64, description="child processes allowed beyond the interpreter")
    threads: int = Field(16, ge=0, le=256, description="threads the code may start (the kernel counts them "
                         "with processes for RLIMIT_NPROC)")
    output_bytes: int = Field(64_000, ge=1024, description="stdout plus stderr before the run is killed")
    file_mb: int = Field(16, ge=1, description="largest file the code may write in its directory")
    open_files: int = Field(64, ge=16, le=4096, description="file descriptors the process may hold")


class SandboxResult(Frozen):
    ok: bool
    outcome: Outcome
    stdout: str = ""
    stderr: str = ""
    error: str = Field("", description="one line saying what went wrong, for the model and the user")
    exit_code: int | None = None
    seconds: float = 0.0
    layers: tuple[str, ...] = Field((), description="isolation layers that were in force for this run")
    violations: tuple[str, ...] = Field((), description="attempts the audit hook blocked")


class Sandbox:
    """Runs Python code in a locked-down child process; `run` never raises for anything the code does."""

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        python: str | None = None,
        namespaces: bool = True,
        landlock: bool = True,
        seccomp: bool = True,
        audit: bool = True,
        site_packages: bool = False,
        run_as: tuple[int, int] | None = None,
        tmp_root: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Turn layers off only to test the others alone (the escape tests do) or where one misbehaves.

        `run_as` (uid, gid): when covey runs as root (a system service), start the sandboxed process as
        this unprivileged user instead; `python` must then be an interpreter that user can run.
        """
        if os.name != "posix":
            raise SandboxUnavailable(f"the sandbox needs a POSIX system; this is {sys.platform}")
        self.limits = limits or SandboxLimits()
        self.python = python or sys.executable
        self.wanted = {"namespaces": namespaces, "landlock": landlock, "seccomp": seccomp, "audit": audit}
        self.site_packages = site_packages
        self.run_as = run_as
        self.tmp_root = Path(tmp_root) if tmp_root else None
        self._clock = clock
        self._probe: SandboxResult | None = None
        self._missing: dict[str, str] = {}

    # running ----------------------------------------------------------------------------------

    def run(self, code: str, *, files: dict[str, str] | None = None) -> SandboxResult:
        """Run `code` as a script in a fresh directory holding `files` (name -> text); the result says how it ended."""
        workdir = Path(tempfile.mkdtemp(prefix="covey-sandbox-", dir=self.tmp_root))
        try:
            return self._run_in(workdir, code, files or {})
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run_in(self, workdir: Path, code: str, files: dict[str, str]) -> SandboxResult:
        for name, text in files.items():
            target = (workdir / name).resolve()
            if workdir.resolve() not in target.parents:
                return SandboxResult(ok=False, outcome="error", error=f"file name {name!r} leaves the sandbox")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        code_path = workdir / ".covey_code.py"
        code_path.write_text(code, encoding="utf-8")
        config = workdir / ".covey_jail.json"
        config.write_text(json.dumps({
            "workdir": str(workdir), "code_path": str(code_path), "read_roots": self.read_roots(),
            "limits": self.limits.model_dump(), "layers": self.wanted,
        }), encoding="utf-8")
        if self.run_as is not None:
            for path in (workdir, code_path, config, *(workdir / n for n in files)):
                os.chown(path, *self.run_as)
        status_r, status_w = os.pipe()
        env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir), "LANG": "C.UTF-8",
               "LC_ALL": "C.UTF-8"}
        cmd = [self.python, "-I", "-B", "-X", "utf8", *([] if self.site_packages else ["-S"]), str(JAIL), str(config),
               str(status_w)]
        start = self._clock()
        try:
            as_user: dict[str, Any] = ({} if self.run_as is None else
                                       {"user": self.run_as[0], "group": self.run_as[1], "extra_groups": []})
            proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, pass_fds=(status_w,), start_new_session=True,
                                    close_fds=True, **as_user)
        except OSError as exc:
            os.close(status_r)
            os.close(status_w)
            raise SandboxUnavailable(f"cannot start {self.python}: {exc.strerror}") from exc
        os.close(status_w)  # the child holds the write end
        try:
            out, err, status, killed = self._collect(proc, status_r, start)
        finally:
            os.close(status_r)
        seconds = max(0.0, self._clock() - start)
        return self._result(proc.returncode, out, err, status, killed, seconds)

    def _collect(self, proc: subprocess.Popen[bytes], status_fd: int, start: float
                 ) -> tuple[bytes, bytes, bytes, str | None]:
        """Read stdout, stderr and the status pipe until all close, killing on timeout or too much output."""
        bufs: dict[int, bytearray] = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray(),  # type: ignore[union-attr]
                                      status_fd: bytearray()}
        out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()  # type: ignore[union-attr]
        killed: str | None = None
        deadline = start + self.limits.wall_seconds
        with selectors.DefaultSelector() as sel:
            for fd in bufs:
                os.set_blocking(fd, False)
                sel.register(fd, selectors.EVENT_READ)
            leader_done = False
            while sel.get_map():
                if not leader_done and _exited(proc):
                    leader_done = True  # processes it left behind may hold the pipes: read briefly, then stop
                    deadline = min(deadline, self._clock() + 0.3)
                remaining = deadline - self._clock()
                if remaining <= 0 and leader_done:
                    break
                if remaining <= 0 and killed is None:
                    killed = "timeout"
                    self._kill(proc)
                    deadline = self._clock() + 2.0  # drain what is left, then stop waiting
                    continue
                if remaining <= 0:
                    break
                for key, _ in sel.select(timeout=min(remaining, 0.1)):
                    try:
                        chunk = os.read(key.fd, 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        sel.unregister(key.fd)
                        continue
                    if key.fd == status_fd and len(bufs[key.fd]) > 65536:
                        continue  # the code is writing to our status pipe: ignore the excess
                    bufs[key.fd] += chunk
                    if key.fd != status_fd and killed is None and \
                            len(bufs[out_fd]) + len(bufs[err_fd]) > self.limits.output_bytes:
                        killed = "output"
                        self._kill(proc)
        self._reap(proc)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        return bytes(bufs[out_fd]), bytes(bufs[err_fd]), bytes(bufs[status_fd]), killed

    def _reap(self, proc: subprocess.Popen[bytes]) -> None:
        """Wait for the child, then kill what it left in its process group, then reap it.

        The exited leader stays a zombie until reaped, which keeps its process-group id from being
        reused, so the group kill cannot hit an unrelated process.
        """
        if hasattr(os, "waitid"):
            until = self._clock() + 5.0
            while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
                if self._clock() > until:
                    break
                time.sleep(0.01)
            self._kill(proc)
            proc.wait()
            return
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            proc.wait()

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()

    def _result(self, returncode: int, out: bytes, err: bytes, status_raw: bytes, killed: str | None,
                seconds: float) -> SandboxResult:
        lines: list[dict[str, Any]] = [json.loads(line) for line in _json_lines(status_raw)]
        header: dict[str, Any] = next((line for line in lines if "layers" in line), {})
        final = next((line for line in reversed(lines) if "outcome" in line), None)
        self._missing = dict(header.get("missing", {}))
        limit = self.limits.output_bytes
        common: dict[str, Any] = dict(stdout=_text(out, limit), stderr=_text(err, limit), exit_code=returncode, seconds=seconds,
                      layers=tuple(header.get("layers", ())), violations=tuple((final or {}).get("violations", ())))
        if killed == "timeout":
            return SandboxResult(ok=False, outcome="timeout", error=f"timed out after {self.limits.wall_seconds:g} s "
                                 "(wall clock); the code may loop forever or wait on something", **common)
        if killed == "output":
            return SandboxResult(ok=False, outcome="output", error=f"printed more than {limit} bytes; "
                                 "print less (a summary, not every value)", **common)
        if final is None:
            return SandboxResult(ok=False, **self._death(returncode, err), **common)
        violations = common["violations"]
        if violations:
            return SandboxResult(ok=False, outcome="blocked", error=f"the sandbox blocked {violations[0]}; code "
                                 "here runs alone: no programs, network, C libraries or files outside its "
                                 "directory", **common)
        if final["outcome"] == "ok":
            return SandboxResult(ok=True, outcome="ok", **common)
        problem = final.get("error") or {}
        kind, message, line = problem.get("type", "Error"), problem.get("message", ""), problem.get("line")
        where = f" (line {line})" if line else ""
        if kind == "MemoryError":
            return SandboxResult(ok=False, outcome="memory", error=f"ran out of memory (the limit is "
                                 f"{self.limits.memory_mb} MB){where}", **common)
        if kind == "SystemExit":
            return SandboxResult(ok=False, outcome="error", error=f"exited with status {message}", **common)
        text = f"{kind}: {message}" if message else kind
        if kind == "PermissionError":  # Landlock or seccomp said no at the OS level
            return SandboxResult(ok=False, outcome="blocked", error=f"the sandbox refused it: {text}{where}", **common)
        return SandboxResult(ok=False, outcome="error", error=f"{text}{where}", **common)

    def _death(self, returncode: int, err: bytes) -> dict[str, object]:
        """Outcome and error for a child that died before reporting (a signal or a start-up failure)."""
        if returncode == -signal.SIGSYS:
            return {"outcome": "blocked", "error": "the sandbox killed the code for a forbidden system call "
                    "(starting a process, opening a socket, exec, ptrace or similar)"}
        if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            return {"outcome": "cpu", "error": f"used more than {self.limits.cpu_seconds} s of CPU time; "
                    "the code may loop forever"}
        if returncode < 0:
            try:
                name: object = signal.Signals(-returncode).name
            except ValueError:
                name = f"signal {-returncode}"
            if returncode == -signal.SIGSEGV and b"MemoryError" not in err:
                return {"outcome": "crashed", "error": f"the interpreter crashed ({name}); deep recursion or "
                        "running out of memory can do this"}
            return {"outcome": "crashed", "error": f"the process was killed by {name}"}
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        return {"outcome": "crashed", "error": f"the sandbox could not start the code (exit {returncode}: {tail[0]})"}

    # what it can do here ----------------------------------------------------------------------

    def read_roots(self) -> list[str]:
        """Paths the code may read: the interpreter's standard library and the system's shared libraries."""
        roots = {sys.base_prefix, sys.base_exec_prefix, sysconfig.get_paths()["stdlib"],
                 sysconfig.get_paths()["platstdlib"], str(Path(os.path.realpath(self.python)).parent.parent),
                 "/usr/lib", "/usr/lib64", "/usr/local/lib", "/lib", "/lib64", "/etc/ld.so.cache",
                 "/etc/localtime", "/usr/share/zoneinfo"}
        if self.site_packages:
            roots |= {sys.prefix, sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
        return sorted(r for r in roots if r and os.path.exists(r) and r not in ("/", "/usr", "/root"))

    def layers(self) -> tuple[str, ...]:
        """The isolation layers in force here, found by running a trivial script once."""
        if self._probe is None:
            self._probe = self.run("pass")
        return self._probe.layers

    def describe(self) -> str:
        """What this sandbox enforces on this machine, and what is weaker where a layer is missing."""
        layers = self.layers()
        have = {name for name in LAYERS if any(layer.startswith(name) for layer in layers)}
        lim = self.limits
        lines = [f"Python code runs in a separate process ({self.python} -I{'' if self.site_packages else ' -S'}) "
                 f"in a fresh temporary directory with a clean environment and no input; killed after "
                 f"{lim.wall_seconds:g} s wall clock or {lim.output_bytes} bytes of output.",
                 f"rlimits: {lim.cpu_seconds} s CPU, {lim.memory_mb} MB memory, {lim.file_mb} MB files, "
                 f"{lim.open_files} open files, {lim.processes} extra processes and {lim.threads} threads, no core dumps"
                 + ("" if sys.platform.startswith("linux") else " (macOS does not enforce the memory limit)")]
        explain = {
            "namespaces": "private user, network and mount namespaces: no network, not even the host's loopback",
            "landlock": "Landlock: reads limited to Python and system libraries, writes to the sandbox directory "
                        "only, no TCP, no signals outside",
            "seccomp": "seccomp: no new processes, exec, sockets, ptrace, mount, bpf or io_uring",
            "audit": "audit hook: clear errors for subprocess, os.system, sockets, ctypes, files outside "
                     "(Python level only)",
        }
        for name, text in explain.items():
            layer = next((item for item in layers if item.startswith(name)), None)
            if layer:
                lines.append(f"yes {text}" + (f" [{layer}]" if layer != name else ""))
            else:
                why = self._missing.get(name, "turned off" if not self.wanted[name] else "not available")
                lines.append(f"NO  {text} ({why})")
        if not {"namespaces", "seccomp"} & have:
            lines.append("weaker: nothing at the OS level stops network access; only the audit hook does")
        if not {"landlock"} & have:
            lines.append("weaker: nothing at the OS level stops reading (or, as the same user, writing) the "
                         "user's files; only the audit hook does")
        if "seccomp" not in have:
            lines.append("weaker: the code can start processes up to its limit, and one that leaves its process "
                         "group can outlive the run")
            if os.geteuid() == 0 and self.run_as is None:
                lines.append("weaker: running as root, the process limit does not bind (a fork bomb is stopped "
                             "only by the audit hook and the wall clock); set run_as to an unprivileged user")
        return "\n".join(lines)


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the child has exited, without reaping it (its process group stays reserved)."""
    if not hasattr(os, "waitid"):
        return False
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None
    except ChildProcessError:
        return True


def _json_lines(raw: bytes) -> list[bytes]:
    out = []
    for line in raw.splitlines():
        try:
            json.loads(line)
        except ValueError:
            continue
        out.append(line)
    return [line for line in out if line.strip().startswith(b"{")]


def _text(data: bytes, limit: int) -> str:
    text = data[:limit].decode("utf-8", "replace")
    return text + ("\n[... output cut ...]" if len(data) > limit else "")
