"""Waiting for a condition in tests: poll it often, give up loudly after a bounded time (never a bare sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

INTERVAL_S = 0.005


async def until(condition: Callable[[], object], *, timeout_s: float = 10.0, what: str = "the condition") -> None:
    """Return as soon as `condition()` is true; fail the test, naming `what`, after `timeout_s`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not condition():
        if loop.time() >= end:
            raise AssertionError(f"waited {timeout_s:g} s for {what}")
        await asyncio.sleep(INTERVAL_S)
