"""Fixtures for discovery tests: a fresh network namespace per test and JSON-line process readers."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for netns.py

from netns import Netns  # noqa: E402

HERE = Path(__file__).resolve().parent


@pytest.fixture
def netns() -> Iterator[Netns]:
    """A namespace with a multicast loopback; fails (never skips) without root."""
    with Netns() as ns:
        yield ns


class Lines:
    """Reads a child's stdout JSON lines on a thread; ``expect`` waits for a matching one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self._queue.put(json.loads(line))
        self._queue.put(None)

    def expect(self, match: Callable[[dict[str, Any]], bool], timeout: float = 20.0, what: str = "") -> dict[str, Any]:
        """The next line satisfying ``match``; fails naming what was seen if none comes in time."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if item is None:
                pytest.fail(f"process exited (rc={self.proc.poll()}) before {what or 'the expected line'}; saw {self.seen}")
            self.seen.append(item)
            if match(item):
                return item
        pytest.fail(f"no {what or 'matching line'} within {timeout} s; saw {self.seen}")

    def until(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 20.0, what: str = "") -> None:
        """Read lines until ``done(all lines seen so far)`` holds."""
        if done(self.seen):
            return
        self.expect(lambda _: done(self.seen), timeout, what)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()


def spawn(ns: Netns, script: str, *args: str) -> Lines:
    proc = ns.popen(
        [sys.executable, str(HERE / script), *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )
    return Lines(proc)
