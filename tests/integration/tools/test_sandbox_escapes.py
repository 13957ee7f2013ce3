"""Known escape attempts against the real sandbox: each is contained and reported as a clear tool error.

Every attempt runs twice: with all layers, and with the Python audit hook off, so the OS layers
(namespaces, Landlock, seccomp, rlimits) are shown to hold on their own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from covey.tools.sandbox import Sandbox, SandboxLimits

LIMITS = SandboxLimits(wall_seconds=5.0, cpu_seconds=2, memory_mb=256, output_bytes=20_000)


@pytest.fixture(params=["all-layers", "os-layers-only"])
def sandbox(request) -> Sandbox:
    return Sandbox(LIMITS, audit=request.param == "all-layers")


@pytest.fixture
def outside(tmp_path):
    """A folder outside the sandbox holding a secret the code must not read, and where it must not write."""
    (tmp_path / "secret.txt").write_text("the-secret-is-swordfish")
    return tmp_path


@pytest.fixture
def listener():
    """A TCP listener on 127.0.0.1 that the sandboxed code tries to reach."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    yield server
    server.close()


def assert_clear_error(result, *outcomes):
    assert not result.ok, result
    assert result.outcome in outcomes, result
    assert result.error and "\n" not in result.error and "Traceback" not in result.error


def assert_nothing_arrived(server):
    with pytest.raises(socket.timeout):
        conn, _ = server.accept()
        conn.close()


def test_class_hierarchy_walk_to_os_system(sandbox, outside):
    mark = outside / "walked"
    code = ("wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]\n"
            f"wrap.__init__.__globals__['system']('touch {mark}')\n")
    assert_clear_error(sandbox.run(code), "blocked")
    assert not mark.exists()


def test_class_hierarchy_walk_to_subprocess_popen(sandbox, outside):
    mark = outside / "popened"
    code = ("__import__('subprocess')\n"
            "popen = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0]\n"
            f"popen(['touch', '{mark}']).wait()\n")
    assert_clear_error(sandbox.run(code), "blocked")
    assert not mark.exists()


def test_ctypes_system_call(sandbox, outside):
    mark = outside / "ctypes"
    code = f"import ctypes\nctypes.CDLL(None).system(b'touch {mark}')\n"
    assert_clear_error(sandbox.run(code), "blocked")
    assert not mark.exists()


def test_os_system(sandbox, outside):
    mark = outside / "system"
    assert_clear_error(sandbox.run(f"import os\nos.system('touch {mark}')\n"), "blocked")
    assert not mark.exists()


def test_socket_connect_to_a_listener_on_loopback(sandbox, listener):
    port = listener.getsockname()[1]
    code = ("import socket\n"
            f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "s.sendall(b'escaped')\n")
    assert_clear_error(sandbox.run(code), "blocked")
    assert_nothing_arrived(listener)


def test_reading_a_file_outside(sandbox, outside):
    result = sandbox.run(f"print(open('{outside / 'secret.txt'}').read())\n")
    assert_clear_error(result, "blocked")
    assert "swordfish" not in result.stdout + result.stderr


def test_listing_and_reading_system_files(sandbox):
    result = sandbox.run("print(open('/etc/passwd').read())\n")
    assert_clear_error(result, "blocked")
    assert "root:" not in result.stdout


def test_writing_outside(sandbox, outside):
    target = outside / "written.txt"
    assert_clear_error(sandbox.run(f"open('{target}', 'w').write('x')\n"), "blocked")
    assert not target.exists()


def test_signalling_another_process(sandbox):
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        result = sandbox.run(f"import os, signal\nos.kill({victim.pid}, signal.SIGKILL)\n")
        assert_clear_error(result, "blocked")
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_fork_bomb(sandbox):
    result = sandbox.run("import os\nwhile True:\n    os.fork()\n")
    assert_clear_error(result, "blocked")


def test_memory_bomb(sandbox):
    assert_clear_error(sandbox.run("x = bytearray(1 << 34)\n"), "memory")
    gradual = sandbox.run("chunks = []\nwhile True:\n    chunks.append(bytearray(10 ** 7))\n")
    assert_clear_error(gradual, "memory")
    assert "256 MB" in gradual.error


def test_huge_output(sandbox):
    result = sandbox.run("while True:\n    print('x' * 10000)\n")
    assert_clear_error(result, "output")
    assert len(result.stdout) <= LIMITS.output_bytes + 100


def test_infinite_loop_is_stopped_by_the_cpu_limit():
    # A generous wall clock, so the CPU limit fires first even on a loaded machine.
    box = Sandbox(LIMITS.model_copy(update={"cpu_seconds": 1, "wall_seconds": 60.0}), audit=False)
    result = box.run("while True:\n    pass\n")
    assert_clear_error(result, "cpu")
    assert "1 s of CPU" in result.error


def test_waiting_forever_is_stopped_by_the_wall_clock():
    box = Sandbox(LIMITS.model_copy(update={"wall_seconds": 1.5}))
    result = box.run("import time\ntime.sleep(60)\n")
    assert_clear_error(result, "timeout")
    assert result.seconds < 10


def test_the_environment_is_clean_and_the_directory_private(monkeypatch):
    monkeypatch.setenv("COVEY_TEST_SECRET_TOKEN", "hunter2")
    box = Sandbox(LIMITS)
    result = box.run("import os, json\nopen('note.txt', 'w').write('kept')\n"
                     "print(json.dumps([dict(os.environ), os.getcwd(), open('note.txt').read()]))\n")
    assert result.ok, result
    import json

    env, cwd, note = json.loads(result.stdout)
    assert "COVEY_TEST_SECRET_TOKEN" not in env and "hunter2" not in result.stdout
    assert env["HOME"] == cwd and env["TMPDIR"] == cwd and note == "kept"
    assert not os.path.exists(cwd)  # removed after the run


def test_describe_states_the_layers_in_force():
    box = Sandbox(LIMITS)
    text = box.describe()
    assert box.layers()[:2] == ("rlimits", "namespaces")
    assert {"rlimits", "namespaces", "seccomp", "audit"} <= {layer.split("-")[0] for layer in box.layers()}
    assert any(layer.startswith("landlock-abi") for layer in box.layers())
    for line in ("yes private user, network and mount namespaces", "yes Landlock", "yes seccomp", "yes audit hook"):
        assert line in text
    weak = Sandbox(LIMITS, namespaces=False, landlock=False, seccomp=False).describe()
    assert "NO  private user, network and mount namespaces: no network, not even the host's loopback (turned off)" \
        in weak
    assert "weaker: nothing at the OS level stops network access" in weak


def test_network_namespace_alone_cuts_loopback(listener):
    box = Sandbox(LIMITS, landlock=False, seccomp=False, audit=False)
    port = listener.getsockname()[1]
    result = box.run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n")
    assert_clear_error(result, "error")
    assert "unreachable" in result.error
    assert_nothing_arrived(listener)


def test_landlock_alone_keeps_files_outside_private(outside):
    box = Sandbox(LIMITS, namespaces=False, seccomp=False, audit=False)
    result = box.run(f"print(open('{outside / 'secret.txt'}').read())\n")
    assert_clear_error(result, "blocked")
    assert "Permission denied" in result.error and "swordfish" not in result.stdout


NOBODY = (65534, 65534)


@pytest.fixture
def unprivileged() -> Sandbox:
    """The sandbox started as an ordinary user (as it runs for users), with the system's Python."""
    assert os.geteuid() == 0, "dropping to an unprivileged user needs root; CI and this machine run as root"
    assert os.path.exists("/usr/bin/python3"), "the unprivileged test runs the system's /usr/bin/python3"
    return Sandbox(LIMITS, python="/usr/bin/python3", run_as=NOBODY)


def test_unprivileged_path_has_every_layer(unprivileged, outside, listener):
    result = unprivileged.run("import os\nprint(os.getuid())\n")
    assert result.ok and result.stdout.strip() == "65534"
    assert {"namespaces", "seccomp"} <= set(result.layers)
    assert any(layer.startswith("landlock") for layer in result.layers)
    port = listener.getsockname()[1]
    for code in (f"open('{outside / 'secret.txt'}').read()", "import os; os.system('true')",
                 f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)"):
        assert_clear_error(unprivileged.run(code), "blocked")
    assert_nothing_arrived(listener)


def test_unprivileged_process_limit_stops_a_fork_bomb_without_seccomp():
    box = Sandbox(LIMITS, python="/usr/bin/python3", run_as=NOBODY, seccomp=False, audit=False)
    result = box.run("import os\nwhile True:\n    os.fork()\n")
    assert_clear_error(result, "error")
    assert "BlockingIOError" in result.error or "Resource temporarily unavailable" in result.error


def test_unix_socket_connect(sandbox, tmp_path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = tmp_path / "outside.sock"
    server.bind(str(path))
    server.listen(1)
    server.settimeout(0.5)
    try:
        result = sandbox.run(f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('{path}')\n")
        assert_clear_error(result, "blocked")
        assert_nothing_arrived(server)
    finally:
        server.close()


def test_ordinary_standard_library_code_still_runs(sandbox):
    code = '''
import asyncio, concurrent.futures, sqlite3, tempfile, threading

async def main():
    await asyncio.sleep(0.01)
    return "async"

with concurrent.futures.ThreadPoolExecutor(4) as pool:
    squares = sum(pool.map(lambda x: x * x, range(10)))
with tempfile.NamedTemporaryFile("w", delete=False) as f:
    f.write("scratch")
print(asyncio.run(main()), squares, sqlite3.connect(":memory:").execute("select 6 * 7").fetchone()[0],
      open(f.name).read())
'''
    result = sandbox.run(code)
    assert result.ok, result
    assert result.stdout.split() == ["async", "285", "42", "scratch"]


def test_unprivileged_sandbox_runs_threads_and_asyncio(unprivileged):
    result = unprivileged.run("import asyncio, concurrent.futures\n"
                              "with concurrent.futures.ThreadPoolExecutor(8) as pool:\n"
                              "    print(sum(pool.map(abs, range(-5, 5))))\n"
                              "print(asyncio.run(asyncio.sleep(0, 'ok')))\n")
    assert result.ok, result
    assert result.stdout.split() == ["25", "ok"]


def test_a_child_left_in_the_process_group_is_killed_with_the_run():
    """Without seccomp (some architectures) the code can fork within its process limit; strays die with the run."""
    box = Sandbox(LIMITS, python="/usr/bin/python3", run_as=NOBODY, seccomp=False, audit=False)
    result = box.run("import os, time\nif os.fork() == 0:\n    time.sleep(61.5)\nprint('parent done')\n")
    assert result.ok and "parent done" in result.stdout, result
    leftover = subprocess.run(["pgrep", "-u", "65534", "-f", "time.sleep.61.5"], capture_output=True, text=True,
                              check=False)
    assert leftover.stdout.strip() == ""
