"""Runs inside the sandbox process: lock the process down, then run the model's code. Standard library only.

Started by `covey.tools.sandbox.Sandbox` as ``python -I -S -B _jail.py CONFIG STATUS_FD`` with the sandbox
directory as its working directory and a status pipe whose fd is STATUS_FD. Layers, in order (each one that the
platform refuses is reported, not fatal): resource limits; user, network and mount namespaces;
Landlock (file system, TCP, signals and abstract sockets); a seccomp filter (no new processes, no
exec, no sockets, no ptrace/mount/bpf and other kernel attack surface); an audit hook that turns the
Python-level attempts into clear errors. Then the code runs, and one JSON line on the status pipe says how it
ended. Landlock and seccomp are set with raw syscalls through ctypes because this process runs
without site-packages (so no PyPI binding could be imported here) and the kernel ABI is stable.
"""

import ctypes
import json
import linecache
import os
import platform
import resource
import sys
import traceback

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_THREAD = 0x00020000, 0x10000000, 0x40000000, 0x00010000
CLONE_NS_FLAGS = 0x7E020000 | 0x02000000 | 0x00000080  # NEWNS..NEWNET, NEWCGROUP, NEWTIME
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
RET_KILL, RET_ALLOW, RET_ERRNO = 0x80000000, 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38

# Syscall numbers: the calls that are refused outright (the process is killed), and those checked.
ARCHES = {
    "x86_64": dict(
        audit=0xC000003E, prlimit=302, clone=56, clone3=435, kill=62, tkill=200, tgkill=234, x32=True,
        deny=[57, 58, 59, 322, 41, 101, 165, 166, 155, 161, 272, 308, 321, 298, 323, 425, 426, 427, 250, 248,
              249, 310, 311, 246, 320, 175, 313, 176, 169, 167, 168, 304, 428, 429, 430, 431, 432, 433, 442,
              424, 179, 163, 164, 227, 159, 170, 171, 172, 173, 312],
    ),
    "aarch64": dict(
        audit=0xC00000B7, prlimit=261, clone=220, clone3=435, kill=129, tkill=130, tgkill=131, x32=False,
        deny=[221, 281, 198, 117, 40, 39, 41, 51, 97, 268, 280, 241, 282, 425, 426, 427, 219, 217, 218, 270,
              271, 104, 294, 105, 273, 106, 142, 224, 225, 265, 428, 429, 430, 431, 432, 433, 442, 424, 60, 89,
              170, 112, 161, 162],
    ),
}

LANDLOCK_CREATE, LANDLOCK_ADD_RULE, LANDLOCK_RESTRICT = 444, 445, 446
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1, 2, 4, 8
FS_TRUNCATE, FS_IOCTL_DEV = 1 << 14, 1 << 15

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def _err() -> str:
    return os.strerror(ctypes.get_errno())


def set_limits(limits):
    def cap(which, value, slack=0):
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
            resource.setrlimit(which, (value, min(value + slack, hard)))
        else:
            resource.setrlimit(which, (value, value + slack))

    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_CPU, int(limits["cpu_seconds"]), slack=1)  # SIGXCPU, then SIGKILL
    cap(resource.RLIMIT_FSIZE, int(limits["file_mb"]) << 20)
    cap(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    if hasattr(resource, "RLIMIT_AS"):
        try:
            cap(resource.RLIMIT_AS, int(limits["memory_mb"]) << 20)
        except (ValueError, OSError):  # macOS refuses RLIMIT_AS below the current size
            pass
    if hasattr(resource, "RLIMIT_NPROC"):
        cap(resource.RLIMIT_NPROC, _own_processes() + int(limits["processes"]) + int(limits["threads"]))


def _own_processes():
    uid = os.getuid()
    try:
        names = os.listdir("/proc")
    except OSError:
        return 64  # no /proc (macOS): a small allowance above what the user already runs is unknowable
    count = 0
    for name in names:
        if name.isdigit():
            try:
                count += os.stat("/proc/" + name).st_uid == uid
            except OSError:
                pass
    return count


def enter_namespaces():
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS) != 0:
        raise OSError("unshare(user, net, mount): " + _err())
    for path, text in (("/proc/self/setgroups", "deny"), ("/proc/self/uid_map", "%d %d 1" % (uid, uid)),
                       ("/proc/self/gid_map", "%d %d 1" % (gid, gid))):
        with open(path, "w") as f:
            f.write(text)


def apply_landlock(workdir, read_roots):
    abi = _libc.syscall(LANDLOCK_CREATE, None, 0, 1)
    if abi < 1:
        raise OSError("Landlock is not available: " + _err())
    fs = (1 << 13) - 1
    if abi >= 2:
        fs |= 1 << 13  # REFER
    if abi >= 3:
        fs |= FS_TRUNCATE
    if abi >= 5:
        fs |= FS_IOCTL_DEV
    attr = _RulesetAttr(fs=fs, net=3 if abi >= 4 else 0, scoped=3 if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = _libc.syscall(LANDLOCK_CREATE, ctypes.byref(attr), size, 0)
    if ruleset < 0:
        raise OSError("landlock_create_ruleset: " + _err())
    file_rights = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | (FS_TRUNCATE if abi >= 3 else 0)
    file_rights |= FS_IOCTL_DEV if abi >= 5 else 0

    def allow(path, rights):
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        if not os.path.isdir(path):
            rights &= file_rights
        rule = _PathBeneath(allowed=rights, fd=fd)
        if _libc.syscall(LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) != 0:
            raise OSError("landlock_add_rule(%s): %s" % (path, _err()))
        os.close(fd)

    allow(workdir, fs)
    for root in (*read_roots, os.path.realpath(__file__)):  # this file: for tracebacks through the hook
        allow(root, FS_EXECUTE | FS_READ_FILE | FS_READ_DIR)
    for dev in ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"):
        allow(dev, FS_READ_FILE | FS_WRITE_FILE)
    _no_new_privs()
    if _libc.syscall(LANDLOCK_RESTRICT, ruleset, 0) != 0:
        raise OSError("landlock_restrict_self: " + _err())
    os.close(ruleset)
    return abi


def _no_new_privs():
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError("prctl(NO_NEW_PRIVS): " + _err())


def seccomp_program(arch, pid):
    """The BPF filter: kill on the denied calls, threads only through clone, signals only to itself."""
    a = ARCHES[arch]
    ld = lambda off: (0x20, 0, 0, off)  # BPF_LD|BPF_W|BPF_ABS: load a 32-bit word of seccomp_data
    ret = lambda k: (0x06, 0, 0, k)  # BPF_RET|BPF_K
    prog = [ld(4), (0x15, 1, 0, a["audit"]), ret(RET_KILL), ld(0)]
    if a["x32"]:
        prog += [(0x35, 0, 1, 0x40000000), ret(RET_KILL)]  # JGE: x32 ABI calls
    for nr in a["deny"]:
        prog += [(0x15, 0, 1, nr), ret(RET_KILL)]
    prog += [(0x15, 0, 1, a["clone3"]), ret(RET_ERRNO | ENOSYS)]  # glibc falls back to clone
    prog += [(0x15, 0, 1, a["tkill"]), ret(RET_ERRNO | EPERM)]
    prog += [(0x15, 0, 6, a["clone"]), ld(16), (0x45, 0, 1, CLONE_NS_FLAGS), ret(RET_KILL),
             (0x45, 0, 1, CLONE_THREAD), ret(RET_ALLOW), ret(RET_KILL)]
    prog += [(0x15, 0, 5, a["kill"]), ld(16), (0x15, 2, 0, pid), (0x15, 1, 0, 0), ret(RET_ERRNO | EPERM),
             ret(RET_ALLOW)]
    for nr in (a["tgkill"], a["prlimit"]):  # only on itself (prlimit: pid 0 or its own)
        prog += [(0x15, 0, 5, nr), ld(16), (0x15, 2, 0, pid), (0x15, 1, 0, 0), ret(RET_ERRNO | EPERM), ret(RET_ALLOW)]
    prog.append(ret(RET_ALLOW))
    return prog


def apply_seccomp():
    arch = platform.machine()
    if arch not in ARCHES:
        raise OSError("no seccomp filter for %s" % arch)
    prog = seccomp_program(arch, os.getpid())
    filters = (_SockFilter * len(prog))(*[_SockFilter(*ins) for ins in prog])
    fprog = _SockFprog(len(prog), filters)
    _no_new_privs()
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError("prctl(SECCOMP): " + _err())


class SandboxViolation(PermissionError):
    """Raised by the audit hook; the sandbox reports it as a blocked attempt."""


_BLOCKED_PREFIXES = ("subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                     "pty.", "socket.", "ctypes.", "os.kill", "os.killpg", "signal.pthread_kill", "os.setuid",
                     "os.setgid", "os.chroot",
                     "winreg.", "webbrowser.", "urllib.Request", "http.client.", "ftplib.", "smtplib.",
                     "poplib.", "imaplib.", "nntplib.", "telnetlib.", "resource.prlimit", "sys.remote_exec", "_posixsubprocess.")
_KINDS = (("subprocess.", "starting a process"), ("os.system", "starting a process"), ("os.exec", "running a program"),
          ("os.posix_spawn", "starting a process"), ("os.spawn", "starting a process"), ("os.fork", "starting a process"),
          ("pty.", "starting a process"), ("_posixsubprocess.", "starting a process"), ("socket.", "network access"),
          ("ctypes.", "loading C code with ctypes"), ("os.kill", "signalling other processes"),
          ("signal.pthread_kill", "signalling other processes"))
_WRITE_EVENTS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.symlink", "os.link",
                 "os.truncate", "os.utime", "os.chflags", "os.lchflags", "os.mkfifo", "os.mknod", "shutil.rmtree",
                 "shutil.copyfile", "shutil.copytree", "shutil.move", "os.setxattr", "os.removexattr"}
_READ_EVENTS = {"os.listdir", "os.scandir", "glob.glob", "os.chdir", "os.getxattr", "os.listxattr"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def install_audit_hook(workdir, read_roots, violations):
    realpath, fspath, sep = os.path.realpath, os.fspath, os.sep
    unix = getattr(__import__("socket"), "AF_UNIX", None)
    inside_roots = tuple(realpath(r) for r in read_roots) + ("/dev/null", "/dev/urandom", "/dev/zero",
                                                              realpath(__file__))
    work = realpath(workdir)

    def under(path, roots):
        return any(path == r or path.startswith(r.rstrip(sep) + sep) for r in roots)

    def check_path(event, path, write):
        if isinstance(path, int) or path is None:
            return
        try:
            full = realpath(os.path.join(work, fspath(path) if not isinstance(path, bytes) else path.decode()))
        except (TypeError, ValueError, UnicodeDecodeError):
            return
        if under(full, (work,)) or (not write and under(full, inside_roots)):
            return
        block("%s %s the sandbox directory (%s)" % ("writing" if write else "reading", "outside", full))

    def block(what):
        for prefix, kind in _KINDS:
            if what.startswith(prefix):
                what = "%s (%s)" % (kind, what)
                break
        violations.append(what)
        raise SandboxViolation("sandbox: %s is not allowed" % what)

    def hook(event, args):
        if event == "socket.__new__" and len(args) > 1 and args[1] == unix:
            return  # socketpair() objects (asyncio's self-pipe); connect/bind stay blocked, seccomp kills socket()
        if event.startswith(_BLOCKED_PREFIXES):
            block(event)
        elif event == "open":
            path, mode, flags = (tuple(args) + (None, None, 0))[:3]
            write = bool(flags and flags & _WRITE_FLAGS) or (isinstance(mode, str) and any(c in mode for c in "wax+"))
            check_path(event, path, write)
        elif event in _WRITE_EVENTS:
            for path in args[:2]:
                if isinstance(path, (str, bytes, os.PathLike)):
                    check_path(event, path, True)
        elif event in _READ_EVENTS and args:
            check_path(event, args[0], False)

    sys.addaudithook(hook)


def describe_exception(exc, tb):
    line = None
    for frame, lineno in traceback.walk_tb(tb):
        if frame.f_code.co_filename == "<sandbox>":
            line = lineno
    if isinstance(exc, SyntaxError) and exc.filename == "<sandbox>":
        line = exc.lineno
    name = type(exc).__name__
    text = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    return {"type": name, "message": text, "line": line}


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    status = os.fdopen(int(sys.argv[2]), "w", buffering=1)
    workdir, read_roots, wanted = cfg["workdir"], cfg["read_roots"], cfg["layers"]
    applied, missing = [], {}
    set_limits(cfg["limits"])
    applied.append("rlimits")
    linux = sys.platform.startswith("linux")
    steps = [("namespaces", enter_namespaces), ("landlock", lambda: apply_landlock(workdir, read_roots)),
             ("seccomp", apply_seccomp)]
    for name, step in steps:
        if not wanted.get(name):
            continue
        if not linux:
            missing[name] = "not Linux"
            continue
        try:
            result = step()
        except (OSError, ValueError, AttributeError) as exc:
            missing[name] = str(exc)
        else:
            applied.append(name if result is None else "%s-abi%d" % (name, result))
    with open(cfg["code_path"], encoding="utf-8") as f:
        code = f.read()
    violations = []
    if wanted.get("audit"):
        install_audit_hook(workdir, read_roots, violations)
        applied.append("audit")
    status.write(json.dumps({"layers": applied, "missing": missing}) + "\n")
    linecache.cache["<sandbox>"] = (len(code), None, code.splitlines(True), "<sandbox>")
    outcome = {"outcome": "ok", "exit": 0}
    try:
        exec(compile(code, "<sandbox>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as exc:
        code_ = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        outcome = {"outcome": "ok" if code_ == 0 else "error", "exit": code_,
                   "error": {"type": "SystemExit", "message": str(exc.code), "line": None}}
    except BaseException as exc:  # everything the code raises is its result
        try:
            report = traceback.TracebackException(type(exc), exc, exc.__traceback__.tb_next)
            report.stack = traceback.StackSummary.from_list([f for f in report.stack if f.filename != __file__])
            sys.stderr.write("".join(report.format()))
            outcome = {"outcome": "error", "exit": 1, "error": describe_exception(exc, exc.__traceback__)}
        except MemoryError:
            outcome = {"outcome": "error", "exit": 1, "error": {"type": "MemoryError", "message": "", "line": None}}
    outcome["violations"] = violations[:20]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # a closed or full stream is the code's doing
        pass
    status.write(json.dumps(outcome) + "\n")
    status.flush()
    os._exit(outcome["exit"] if isinstance(outcome["exit"], int) and 0 <= outcome["exit"] < 256 else 1)


if __name__ == "__main__":
    main()
