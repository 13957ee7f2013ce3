"""Does a node's self-benchmark tell the truth? Its figure next to the speed its requests really get.

Real models through a real NodeService (fresh data dir, no cache), in one run:
  cold      the old figure: one 48-token generation right after loading (what nodes announced before)
  bench     the node's self-benchmark now: a warm-up, then the median of three runs
  real      tokens/s of requests as the node serves them (GenerateFinal.tokens_per_second), chat
            prompts of several kinds, median over `--requests`
Prints each figure and the ratios bench/real (target 0.8-1.25) and cold/real.
Not a test: run `python bench/bench_node_speed.py` (about a minute per model on two busy cores).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from covey.device_node.runner import build_node
from covey.device_node.service import BENCH_PROMPT, collect
from covey.settings import Settings
from covey.types import GenerateRequest, Message, ModelId, RequestId, Sampling

PROMPTS = (
    "Tell me a short story about a lighthouse keeper.",
    "Explain why the sky is blue to a child.",
    "Write a Python function that adds two numbers.",
    "List three tips for saving energy at home.",
    "What is the capital of France, and why is it famous?",
)


async def cold_figure(settings: Settings, model: str) -> float:
    """What the node announced before: the first 48-token generation after load, no warm-up."""
    service = build_node(settings.model_copy(update={"node": settings.node.model_copy(
        update={"models": [model], "self_benchmark": False})}), measure=False)
    await service.start()
    try:
        slot = service.slots[model]
        req = GenerateRequest(request_id=RequestId("cold"), model_id=ModelId(model), messages=BENCH_PROMPT,
                              sampling=Sampling(temperature=0.0, seed=0), max_tokens=48)
        stats = await asyncio.get_running_loop().run_in_executor(slot.executor, slot.backend.run, req, lambda p: None)
        return stats.completion_tokens / max(stats.generate_ms / 1000.0, 1e-6)
    finally:
        await service.close()


async def measure(model: str, requests: int, max_tokens: int, threads: int | None) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        node = {"models": [model], "self_benchmark": True, "announce": False, "n_threads": threads}
        settings = Settings.load(data_dir=Path(tmp) / "cold", node=node)
        cold = await cold_figure(settings, model)
        service = build_node(Settings.load(data_dir=Path(tmp) / "bench", node=node), measure=False)
        await service.start()
        try:
            bench = service.slots[model].tokens_per_second
            rates = []
            for i in range(requests):
                req = GenerateRequest(request_id=RequestId(f"r{i}"), model_id=ModelId(model),
                                      messages=(Message(role="user", content=PROMPTS[i % len(PROMPTS)]),),
                                      sampling=Sampling(temperature=0.7, seed=i), max_tokens=max_tokens)
                _, final = await collect(service.generate(req))
                if final.completion_tokens > 1:
                    rates.append(final.tokens_per_second)
            real = statistics.median(rates)
        finally:
            await service.close()
    return cold, bench, real


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", help="catalog id (repeatable); default SmolLM2 and Gemma 3 270M")
    p.add_argument("--requests", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: physical cores)")
    args = p.parse_args()
    models = args.model or ["smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"]
    print(f"{'model':30} {'cold tok/s':>11} {'bench tok/s':>12} {'real tok/s':>11} {'bench/real':>11} {'cold/real':>10}")
    for model in models:
        cold, bench, real = asyncio.run(measure(model, args.requests, args.max_tokens, args.threads))
        print(f"{model:30} {cold:11.1f} {bench:12.1f} {real:11.1f} {bench / real:11.2f} {cold / real:10.2f}")


if __name__ == "__main__":
    main()
