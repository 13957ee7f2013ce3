"""A scripted node that serves gRPC (mutual TLS when its data dir is paired) and announces itself with zeroconf.

Run inside a test namespace only:
    python lan_node.py DATA_DIR NODE_ID NAME [--announce-id ID] [--tps X]
``--announce-id`` announces another node id than the one it holds (a spoof); ``--tps`` a speed claim.
Prints {"event": "announced", "port": ...}; SIGTERM withdraws the announcement and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from covey.discovery.announcer import ZeroconfAnnouncer  # noqa: E402
from covey.types import NodeId  # noqa: E402
from tests.integration.cluster.conftest import start_node  # noqa: E402


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("node_id")
    ap.add_argument("name")
    ap.add_argument("--announce-id")
    ap.add_argument("--tps", type=float, default=0.0)
    args = ap.parse_args()
    node = await start_node(args.data_dir, args.node_id, args.name)
    claim = {"node_id": NodeId(args.announce_id or args.node_id), "tokens_per_second": args.tps,
             "joules_per_token": 0.0001 if args.tps else 0.0}
    announcer = ZeroconfAnnouncer(lambda: node.service.info().model_copy(update=claim), node.server.port,
                                  interface="127.0.0.1")
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await announcer.start()
    print(json.dumps({"event": "announced", "port": node.server.port, "name": announcer.service_name}), flush=True)
    await stop.wait()
    await announcer.close()
    await node.stop()


if __name__ == "__main__":
    asyncio.run(main())
