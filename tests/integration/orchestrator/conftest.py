"""Three real node processes on 127.0.0.1 shared by the frozen-node and load tests (started once, ~10 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from node_procs import NodeProc, start_nodes

QUEUE_LIMIT = 4  # per node: the cluster holds 12 answers at once, the rest of a burst is refused


@pytest.fixture(scope="session")
def trio(tmp_path_factory) -> Iterator[list[NodeProc]]:
    """'ash', 'birch' and 'cedar'; a test that freezes, kills or restarts one leaves it serving again."""
    nodes = start_nodes(tmp_path_factory.mktemp("trio"), ["ash", "birch", "cedar"], queue_limit=QUEUE_LIMIT)
    try:
        yield nodes
    finally:
        for n in nodes:
            n.stop()
