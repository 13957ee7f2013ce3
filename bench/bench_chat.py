"""`covey chat`'s first token: from the node emitting it to the screen update that shows it (target <= 0.2 s).

A real Orchestrator (real pool and graph, a scripted router and a scripted node that streams at a set
pace) behind the real ChatApp under Textual's Pilot (headless, 80x24). "On screen" is the moment the
app hands the terminal the update that contains the token: `App._display` is wrapped, each update is
rendered to the terminal's escape codes, and the first one holding the token's text stops the clock.
Side by side in the same app, each round also times a plain `Static.update` of a word (the status
bar) to its screen update: the floor Textual's own refresh sets, so the ratio says what the chat adds on top.

Run: .venv/bin/python bench/bench_chat.py [--rounds 10] [--tokens 40] [--pace 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from textual.widgets import Static

from covey.agents import Acceptance, AgentRoster, AgentSpec
from covey.energy.carbon import CarbonIntensity
from covey.models.catalog import Catalog
from covey.orchestrator.graph import Deps
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.pool import NodePool
from covey.router.classifier import RouteDecision
from covey.settings import OrchestratorSettings
from covey.tui.app import ChatApp
from covey.types import (
    Energy, EnergyComponent, EnergyMethod, FinishReason, GenerateFinal, ModelOffer, NodeInfo, Sampling, Timings,
    TokenPiece,
)

MODEL = "smollm2-135m-instruct-q4_1"
TARGET_S = 0.2


class Router:
    routes = ("chat",)

    def classify(self, text, history=()):
        return RouteDecision(route="chat", confidence=0.9)


class PacedNode:
    """Streams `tokens` pieces, `pace` seconds apart; the first piece is the round's marker word."""

    def __init__(self, tokens: int, pace: float) -> None:
        self.tokens, self.pace = tokens, pace
        self.address = "bench:1"
        self.marker = ""
        self.emitted: float | None = None
        self.info_ = NodeInfo(node_id="id-bench", name="bench", address=self.address, source="embedded",
                              models=(ModelOffer(model_id=MODEL, loaded=True, queue_limit=4, tokens_per_second=50),),
                              tokens_per_second=50.0, joules_per_token=0.1)

    async def info(self):
        return self.info_

    async def generate(self, req):
        self.emitted = time.perf_counter()
        yield TokenPiece(text=self.marker, logprobs=(-0.1,), token_ids=(0,))
        for i in range(1, self.tokens):
            await asyncio.sleep(self.pace)
            yield TokenPiece(text=f" word{i}", logprobs=(-0.1,), token_ids=(i,))
        yield GenerateFinal(finish_reason=FinishReason.STOP, prompt_tokens=8, completion_tokens=self.tokens,
                            timings=Timings(generate_ms=self.tokens * self.pace * 1000, total_ms=1.0),
                            energy=Energy.of([EnergyComponent(name="cpu", joules=1.0, method=EnergyMethod.ESTIMATED)]),
                            node_id=self.info_.node_id, model_id=req.model_id)

    async def healthy(self):
        return True

    async def close(self):
        pass


class Screen:
    """Wraps `app._display`: the time of the first screen update whose terminal text holds `marker`."""

    def __init__(self, app) -> None:
        self.app = app
        self.marker = ""
        self.seen: float | None = None
        inner = app._display

        def display(screen, renderable) -> None:
            if self.marker and self.seen is None and hasattr(renderable, "render_segments"):
                if self.marker in renderable.render_segments(app.console):
                    self.seen = time.perf_counter()
            inner(screen, renderable)

        app._display = display

    def expect(self, marker: str) -> None:
        self.marker, self.seen = marker, None


async def until(pilot, predicate, timeout: float = 30.0) -> None:
    end = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > end:
            raise TimeoutError("the app never got there")
        await asyncio.sleep(0.001)


async def run(rounds: int, tokens: int, pace: float) -> tuple[list[float], list[float]]:
    settings = OrchestratorSettings(discover=False, tool_answers=False, program_aided=False, verify_answers=False)
    pool = NodePool(settings)
    node = PacedNode(tokens, pace)
    await pool.add_client(node)
    agents = AgentRoster([AgentSpec(name="bench", routes=("chat",), ladder=(MODEL,), system_prompt="You are helpful.",
                                    sampling=Sampling(temperature=0.0), max_tokens=tokens,
                                    accept=Acceptance(min_mean_logprob=-99.0, min_token_logprob=-99.0))])
    with tempfile.TemporaryDirectory() as tmp:
        deps = Deps(router=Router(), agents=agents, pool=pool, catalog=Catalog(models_dir=Path(tmp) / "models"),
                    settings=settings)
        app = ChatApp(Orchestrator(deps), data_dir=Path(tmp), carbon=CarbonIntensity(g_per_kwh=300, source="bench"),
                      session_id="bench")
        chat, floor = [], []
        async with app.run_test(size=(80, 24)) as pilot:
            screen = Screen(app)
            probe = app.query_one("#status", Static)  # always on screen
            for i in range(rounds):
                node.marker = f"Zebra{i}fish"
                screen.expect(node.marker)
                app.ask(f"question {i}")
                await until(pilot, lambda: screen.seen is not None)
                chat.append(screen.seen - node.emitted)
                await until(pilot, lambda: app.answering is None)
                await pilot.pause()
                word = f"Quokka{i}seen"
                screen.expect(word)
                t0 = time.perf_counter()
                probe.update(word)
                await until(pilot, lambda: screen.seen is not None)
                floor.append(screen.seen - t0)
        await pool.close()
    return chat, floor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=40)
    ap.add_argument("--pace", type=float, default=0.02, help="seconds between the node's tokens")
    args = ap.parse_args()
    chat, floor = asyncio.run(run(args.rounds, args.tokens, args.pace))
    print("per answer (ms):", " ".join(f"{x * 1000:.0f}" for x in chat))
    chat.sort()
    med, p90, worst = statistics.median(chat), chat[int(0.9 * (len(chat) - 1))], chat[-1]
    within = sum(x <= TARGET_S for x in chat)
    fmed = statistics.median(floor)
    print(f"first token, node -> chat screen: median {med * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms, max "
          f"{worst * 1000:.1f} ms; {within}/{len(chat)} answers within the {TARGET_S * 1000:.0f} ms target "
          f"({'met' if p90 <= TARGET_S else 'MISSED'} at p90)")
    print(f"plain Static.update -> screen in the same app: median {fmed * 1000:.1f} ms; "
          f"chat / plain ratio {med / fmed if fmed else float('inf'):.2f}")
    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

if __name__ == "__main__":
    main()
