"""The orchestrator's pool as `covey nodes` builds it from a data dir, browsing zeroconf; events as JSON lines.

Run inside a test namespace only:  python secure_browse.py DATA_DIR
Lines: {"kind": "ready"}, then {"kind", "node_id", "address", "tps", "foreign", "reason"} per directory event.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from covey.discovery.directory import DirectoryEvent
from covey.wiring import node_pool
from covey.settings import Settings


def report(event: DirectoryEvent) -> None:
    node, refused = event.node, event.refused
    print(json.dumps({"kind": event.kind, "node_id": node.node_id if node else None,
                      "address": node.address if node else (refused.address if refused else None),
                      "tps": node.tokens_per_second if node else None,
                      "foreign": refused.foreign if refused else False, "reason": event.reason}), flush=True)


async def main() -> None:
    settings = Settings.load(data_dir=Path(sys.argv[1]), orchestrator={
        "discover": True, "discovery_interface": "127.0.0.1", "health_interval_s": 0.5, "embedded": "never"})
    pool = await node_pool(settings)
    pool.directory.subscribe(report)
    await pool.start()
    print(json.dumps({"kind": "ready"}), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
