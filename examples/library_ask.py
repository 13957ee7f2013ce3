"""covey as a library: build the orchestrator from settings, stream one answer, read its energy.

Run: .venv/bin/python examples/library_ask.py "What is 12 squared?"
(uses the embedded in-process node unless nodes are configured; no LAN discovery here)
"""

import asyncio
import sys

from covey import AnswerResult, Settings, build
from covey.orchestrator.results import Notice, Token


async def main(prompt: str) -> None:
    settings = Settings.load(orchestrator={"discover": False})
    orch = await build(settings)
    try:
        async for event in orch.stream(prompt):
            if isinstance(event, Token):
                print(event.text, end="", flush=True)
            elif isinstance(event, Notice):
                print(f"\n[{event.kind}] {event.text}")
            elif isinstance(event, AnswerResult):
                print(f"\n\nroute={event.route} agent={event.agent} node={event.node} model={event.model}")
                print(f"energy={event.energy.joules:.2f} J ({event.energy.method.value}), attempts={len(event.attempts)}")
    finally:
        await orch.close()


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "What is 12 squared?"))
