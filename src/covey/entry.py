"""The `covey` console script's first module (and `python -m covey`'s): start-up without pauses for the
cyclic garbage collector, and an exit without a last collection over every object start-up made.

Importing covey, LangGraph and the rest allocates about a million objects that live as long as the
process; the collector would walk them again and again while they load, and once more at exit. Both
cost seconds on a slow device (about 0.5 s on a 2-core server) and free nothing. So the collector waits
`STARTUP_GC_PAUSE_S` (long-running commands, `serve`, `chat`, `node join`, then collect as usual) and
the objects alive at exit are frozen out of the final collection.
"""

from __future__ import annotations

import gc
import threading

STARTUP_GC_PAUSE_S = 10.0


def main() -> None:
    gc.disable()
    resume = threading.Timer(STARTUP_GC_PAUSE_S, gc.enable)
    resume.daemon = True
    resume.start()
    try:
        from covey.cli import main as cli_main

        cli_main()
    finally:
        resume.cancel()
        gc.freeze()  # exiting now: the interpreter's last collection skips what is alive
