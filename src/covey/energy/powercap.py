"""A closed loop that keeps a node's power under a cap by changing llama.cpp's thread count.

Call `step()` between tokens (the node's LlamaBackend.run has a `between_tokens` hook and a
`set_threads(n)` method that calls llama.cpp's `llama_set_n_threads`). Every `interval_s` it reads power (measured or estimated) and
moves the thread count one step: down when over the cap, up when comfortably below it
(`headroom`), so it settles at the largest thread count that stays under the cap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class PowerCapController:
    def __init__(self, cap_watts: float, read_power_w: Callable[[], float], set_threads: Callable[[int], None],
                 min_threads: int = 1, max_threads: int = 4, clock: Callable[[], float] = time.monotonic, *,
                 interval_s: float = 0.5, headroom: float = 0.85, start_threads: int | None = None) -> None:
        if cap_watts <= 0:
            raise ValueError("cap_watts must be positive")
        if not 1 <= min_threads <= max_threads:
            raise ValueError("need 1 <= min_threads <= max_threads")
        self.cap_watts = cap_watts
        self.read_power_w = read_power_w
        self.set_threads = set_threads
        self.min_threads, self.max_threads = min_threads, max_threads
        self.clock = clock
        self.interval_s = interval_s
        self.headroom = headroom
        self.threads = max(min_threads, min(max_threads, start_threads or max_threads))
        self.last_watts = 0.0
        self._last_t = clock()
        self._above_since_up = False
        self.set_threads(self.threads)

    def step(self) -> int:
        """Maybe adjust; returns the thread count now in force."""
        now = self.clock()
        if now - self._last_t < self.interval_s:
            return self.threads
        self._last_t = now
        watts = self.read_power_w()
        self.last_watts = watts
        target = self.threads
        if watts > self.cap_watts and self.threads > self.min_threads:
            target = self.threads - 1
        elif watts < self.cap_watts * self.headroom and self.threads < self.max_threads:
            target = self.threads + 1
        if target != self.threads:
            logger.info("power %.1f W against a %.1f W cap: %d -> %d threads", watts, self.cap_watts,
                        self.threads, target)
            self.threads = target
            self.set_threads(target)
        return self.threads

