"""Keep llama.cpp's thread count at the fastest one for how busy the machine is now.

llama.cpp's threads meet at a barrier after every operation of every token. When another process takes a
core, one of them is descheduled and the others wait for it: on a 2-core machine with one core busy, two
threads decoded SmolLM2 at 2-15 tokens/s where one thread kept 77-81 (bench/bench_threads.py). A thread
count chosen once, at load, cannot know that, so the node measures instead: generation is timed in short
windows, and now and then one window runs with one thread more or fewer. The faster count is kept (it
must be clearly faster, so noise does not flip it), for the rest of this request and the next ones. A
probe that loses waits twice as long before the next one (so a settled machine pays little for them),
and a kept count whose speed suddenly drops is probed at once (the load changed).

Two goals. 'speed' keeps the fastest count. 'energy' keeps the count that spends the fewest CPU seconds
per token (the process's CPU time: a waiting thread spins, and CPU time is what the ledger's estimate
counts) among those at most a quarter slower than the fastest count last measured: on 2 idle cores, one
thread decoded at 0.91x the speed of two for 0.55x their CPU time per token.

The power cap (covey.energy.powercap) moves threads for its own reason; while it runs, this stays out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

MIN_TOKENS = 4
"""A window has at least this many tokens..."""
MAX_TOKENS = 16
MIN_SECONDS = 0.25
"""...and ends at MAX_TOKENS tokens or once MIN_SECONDS have passed, whichever is first."""
PROBE_EVERY = 4
"""Windows at the kept count before the first probe of a neighbouring count..."""
MAX_PROBE_EVERY = 64
"""...doubled after each probe that lost, up to this."""
SLOW_PROBE = 2.0
"""A probe window whose tokens took this many times the kept count's time per token so far ends at once."""
DROPPED = 0.6
"""A kept count's window slower than this share of its previous one means the load changed: probe now."""
CLEARLY_BETTER = 1.1
"""A probed count is kept only when its window was this many times as fast (or as frugal) as the kept
count's last one."""
SPEED_SHARE = 0.75
"""The 'energy' goal keeps only counts at least this share as fast as the fastest one last measured."""

Goal = Literal["speed", "energy"]


@dataclass(frozen=True)
class Window:
    rate: float  # tokens per second
    cpu: float  # CPU seconds per token


class ThreadTuner:
    """Between tokens, times generation and probes neighbouring thread counts (1..max_threads)."""

    def __init__(self, max_threads: int, set_threads: Callable[[int], None], *, threads: int | None = None,
                 goal: Goal = "speed", clock: Callable[[], float] = time.monotonic,
                 cpu_clock: Callable[[], float] = time.process_time) -> None:
        self.max_threads = max(1, max_threads)
        self.set_threads = set_threads
        self.goal = goal
        self.clock, self.cpu_clock = clock, cpu_clock
        self.threads = min(self.max_threads, threads or self.max_threads)  # the count kept
        self.trying: int | None = None  # the count a probe window runs with
        self.kept: Window | None = None  # the kept count's latest window
        self.latest: dict[int, float] = {}  # each count's latest tokens/s
        self.interval = PROBE_EVERY  # windows between probes (doubles while probes lose)
        self.windows = self.interval - 1  # windows at the kept count since the last probe: the first comes soon
        self.downward = True  # the direction of the next probe
        self.switches = 0
        self._start: tuple[float, float] | None = None
        self._tokens = 0

    def begin(self) -> None:
        """A request starts: the time since the last one was no generation."""
        self._start = None
        self._tokens = 0

    def step(self, _completion: int = 0) -> None:
        """Called after each generated token."""
        now, cpu = self.clock(), self.cpu_clock()
        if self._start is None:  # the first token of a window: time from here
            self._start, self._tokens = (now, cpu), 0
            return
        self._tokens += 1
        elapsed = now - self._start[0]
        if self.trying is not None and self.kept and elapsed > SLOW_PROBE * self._tokens / self.kept.rate:
            pass  # a probe this much slower than the kept count has lost already: end it now
        elif self._tokens < MIN_TOKENS or (self._tokens < MAX_TOKENS and elapsed < MIN_SECONDS):
            return
        window = Window(rate=self._tokens / elapsed if elapsed > 0 else float("inf"),
                        cpu=(cpu - self._start[1]) / self._tokens)
        self._start, self._tokens = (now, cpu), 0
        if self.trying is not None:
            self._settle(window)
            return
        if self.kept is not None and window.rate < DROPPED * self.kept.rate:
            self.interval = PROBE_EVERY
            self.windows = self.interval  # the machine got busier: see at once whether another count does better
        self.kept = window
        self.latest[self.threads] = window.rate
        self.windows += 1
        if self.windows >= self.interval and self.max_threads > 1:
            self._probe()

    def _probe(self) -> None:
        below, above = self.threads - 1, self.threads + 1
        if self.downward:
            candidate = below if below >= 1 else above
        else:
            candidate = above if above <= self.max_threads else below
        self.downward = not self.downward
        self.trying = candidate
        self.set_threads(candidate)

    def better(self, probe: Window, kept: Window) -> bool:
        """Whether the probed count's window beats the kept count's, for the goal."""
        faster = probe.rate >= CLEARLY_BETTER * kept.rate
        if self.goal == "speed":
            return faster
        floor = SPEED_SHARE * max(self.latest.values(), default=0.0)
        if kept.rate < floor:  # the kept count is too slow now: speed decides
            return faster
        return probe.rate >= floor and probe.cpu * CLEARLY_BETTER <= kept.cpu

    def _settle(self, window: Window) -> None:
        tried, self.trying = self.trying, None
        assert tried is not None
        self.windows = 0
        self.latest[tried] = window.rate
        if self.kept is not None and self.better(window, self.kept):
            self.downward = tried < self.threads  # the next probe goes on the way that helped
            self.threads, self.kept = tried, window
            self.switches += 1
            self.interval = PROBE_EVERY
        else:
            self.set_threads(self.threads)
            self.interval = min(MAX_PROBE_EVERY, 2 * self.interval)
