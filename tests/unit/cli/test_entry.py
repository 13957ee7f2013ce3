"""The console script's entry (`covey`, `python -m covey`): the collector pauses during start-up, resumes
for long-running commands, and the exit skips a last collection. Each case runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src"


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_quick_command_runs_without_the_collector_and_exits_frozen() -> None:
    out = run("""
        import gc, sys
        import covey.cli
        seen = []
        covey.cli.main = lambda: seen.append(gc.isenabled())
        from covey.entry import main
        main()
        print(seen, gc.isenabled(), gc.get_freeze_count() > 0)
    """)
    assert out == "[False] False True"


def test_a_long_running_command_gets_the_collector_back_after_the_pause() -> None:
    out = run("""
        import gc, time
        import covey.cli, covey.entry
        covey.entry.STARTUP_GC_PAUSE_S = 0.2
        seen = []
        def serve():
            seen.append(gc.isenabled())
            end = time.monotonic() + 30
            while not gc.isenabled() and time.monotonic() < end:
                time.sleep(0.05)
            seen.append(gc.isenabled())
        covey.cli.main = serve
        covey.entry.main()
        print(seen)
    """)
    assert out == "[False, True]"


def test_python_dash_m_covey_is_the_same_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "covey", "--version"], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0 and done.stdout.startswith("covey "), (done.stdout, done.stderr)


def test_the_console_script_points_at_the_entry() -> None:
    import tomllib

    scripts = tomllib.loads((SRC.parent / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"covey": "covey.entry:main"}
