"""A directory process for discovery tests: ZeroconfDirectory + HealthChecker, events as JSON lines.

Run inside a test namespace only:  python browse.py [--interval S] [--failures N] [--interface IP] [--grpc]
The health check is a TCP connect to the node's announced port (the fake nodes listen there), or
with --grpc the orchestrator's own NodePool (grpc.health.v1 checks, gRPC Info for peers).
Each line: {"kind": "added"|"updated"|"removed"|"refused", "node_id", "battery", "reason", "t"};
the first line is {"kind": "ready"}. SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

from covey.discovery.directory import DirectoryEvent, NodeDirectory
from covey.discovery.health import HealthChecker
from covey.discovery.browser import ZeroconfDirectory
from covey.types import NodeInfo


async def tcp_check(node: NodeInfo) -> bool:
    host, _, port = node.address.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True


def say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def report(event: DirectoryEvent) -> None:
    node = event.node
    say(
        kind=event.kind,
        node_id=node.node_id if node else None,
        name=node.name if node else None,
        address=node.address if node else (event.refused.address if event.refused else None),
        battery=node.battery.percent if node else None,
        models=[m.model_id for m in node.models] if node else [],
        reason=event.reason,
        t=time.time(),
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interval", type=float, default=0.3)
    parser.add_argument("--failures", type=int, default=2)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--grpc", action="store_true")
    args = parser.parse_args()

    directory = NodeDirectory()
    directory.subscribe(report)
    if args.grpc:
        from covey.orchestrator.pool import NodePool
        from covey.orchestrator.client import GrpcNodeClient
        from covey.settings import OrchestratorSettings

        pool = NodePool(
            OrchestratorSettings(discover=True, discovery_interface=args.interface,
                                 health_interval_s=args.interval, health_failures=args.failures),
            directory=directory, client_factory=GrpcNodeClient, browser_factory=ZeroconfDirectory,
        )
        await pool.start()
        stopping = pool.close
    else:
        browser = ZeroconfDirectory(directory, interface=args.interface)
        health = HealthChecker(directory, tcp_check, failures=args.failures, interval_s=args.interval)
        await browser.start()
        checking = asyncio.create_task(health.run())

        async def stopping() -> None:
            checking.cancel()
            await browser.close()

    say(kind="ready", t=time.time())

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await stopping()


if __name__ == "__main__":
    asyncio.run(main())
