"""A stand-in node for discovery tests: a real ZeroconfAnnouncer and a TCP port to health-check.

Run inside a test namespace only:
    python fake_node.py NODE_ID NAME [--battery PERCENT] [--protocol N] [--interface IP]
Prints JSON lines on stdout ({"event": "announced", ...}); reads commands on stdin:
``battery 30`` re-announces with a new battery level, ``model ID`` adds a loaded model.
SIGTERM or SIGINT withdraws the service (goodbye packets) and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from covey.discovery.announcer import ZeroconfAnnouncer
from covey.types import PROTOCOL_VERSION, Battery, ModelId, ModelOffer, NodeId, NodeInfo


def say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("node_id")
    parser.add_argument("name")
    parser.add_argument("--battery", type=float, default=80.0)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--protocol", type=int, default=PROTOCOL_VERSION)
    args = parser.parse_args()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, args.interface, 0)
    port = server.sockets[0].getsockname()[1]
    state = {
        "info": NodeInfo(
            node_id=NodeId(args.node_id),
            name=args.name,
            covey_version="0.1.0",
            models=(ModelOffer(model_id=ModelId("smollm2-135m-instruct-q4_1"), loaded=True),),
            ram_total_bytes=8 << 30,
            ram_free_bytes=6 << 30,
            cpu_cores=4,
            tokens_per_second=150.0,
            battery=Battery(present=True, on_battery=True, percent=args.battery),
            joules_per_token=0.02,
            protocol_version=args.protocol,
        )
    }
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # before announcing, so an early SIGTERM still says goodbye
        loop.add_signal_handler(sig, stop.set)
    announcer = ZeroconfAnnouncer(lambda: state["info"], port, interface=args.interface)
    await announcer.start()
    say(event="announced", name=announcer.service_name, port=port, node_id=args.node_id)

    async def commands() -> None:
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().split():
            info = state["info"]
            if line[0] == "battery":
                info = info.model_copy(update={"battery": info.battery.model_copy(update={"percent": float(line[1])})})
            elif line[0] == "model":
                info = info.model_copy(update={"models": (*info.models, ModelOffer(model_id=ModelId(line[1]), loaded=True))})
            state["info"] = info
            changed = await announcer.update()
            say(event="updated", changed=changed, txt=announcer.txt)

    reading = asyncio.create_task(commands())
    await stop.wait()
    reading.cancel()
    await announcer.close()
    server.close()
    say(event="closed")


if __name__ == "__main__":
    asyncio.run(main())
