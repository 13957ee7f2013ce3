"""Measurement overhead: tokens/s with energy accounting on divided by off (target >= 0.98).

Real SmolLM2-135M through llama_cpp.Llama. Three modes, interleaved round by round so drift
affects all alike: off; a meter window per request; a window per request plus a meter edge per
token (what the power-cap loop does). Not a test: run `python bench/bench_energy.py`.
"""

from __future__ import annotations

import argparse
import statistics
import time

from llama_cpp import Llama

from covey.energy.detect import detect_meter
from covey.models.catalog import Catalog
from covey.settings import Settings

PROMPT = "Write a short paragraph about rivers and the sea."
TARGET = 0.98


def run(llm: Llama, tokens: int, meter=None, per_token: bool = False) -> tuple[int, float, float]:
    """(tokens, wall seconds, process CPU seconds) for one request."""
    window = meter.open("bench") if meter is not None else None
    c0 = time.process_time()
    t0 = time.perf_counter()
    n = 0
    for _ in llm.generate(llm.tokenize(PROMPT.encode()), temp=0.0, reset=True):
        n += 1  # a fixed token count in every mode, end-of-sequence or not
        if per_token:
            meter.tick()
        if n >= tokens:
            break
    if window is not None:
        window.close()
    return n, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=96)
    args = ap.parse_args()
    _, path = Catalog().resolve("smollm2-135m-instruct-q4_1")
    llm = Llama(model_path=str(path), n_ctx=512, n_threads=2, verbose=False)
    meter = detect_meter(Settings())
    print(f"meter: {meter.describe()}")
    modes = {"off": (None, False), "window": (meter, False), "window+per-token": (meter, True)}
    rates: dict[str, list[float]] = {m: [] for m in modes}
    cpu_rates: dict[str, list[float]] = {m: [] for m in modes}
    run(llm, 16)  # warm-up
    for r in range(args.rounds):
        order = list(modes) if r % 2 == 0 else list(reversed(modes))
        for mode in order:
            m, per_token = modes[mode]
            n, dt, cpu = run(llm, args.tokens, m, per_token)
            rates[mode].append(n / dt)
            cpu_rates[mode].append(n / cpu)
    meter.close()
    print(f"{args.rounds} rounds x {args.tokens} tokens (ratios paired within each round, then the median;"
          " best = fastest round of each mode):")
    for mode, rs in rates.items():
        paired = statistics.median(r / o for r, o in zip(rs, rates["off"]))
        print(f"  {mode:18s} median {statistics.median(rs):7.1f} tok/s  best {max(rs):7.1f} tok/s  "
              f"ratio on/off paired {paired:.3f}  best/best {max(rs) / max(rates['off']):.3f}")
    on, off = statistics.median(rates["window"]), statistics.median(rates["off"])
    paired = statistics.median(r / o for r, o in zip(rates["window"], rates["off"]))
    verdict = "ok" if paired >= TARGET else "BELOW TARGET"
    print(f"accounting overhead: {on:.1f} tok/s with accounting on, {off:.1f} tok/s off, "
          f"on/off {paired:.3f} (target >= {TARGET}: {verdict})")
    print("tokens per process-CPU-second (insensitive to other programs on a shared machine):")
    for mode, rs in cpu_rates.items():
        paired = statistics.median(r / o for r, o in zip(rs, cpu_rates["off"]))
        print(f"  {mode:18s} median {statistics.median(rs):7.1f} tok/cpu-s  ratio on/off paired {paired:.3f}")
    print(f"windows attributed {meter.attributed_joules:.1f} J in total")
    # The cost of the accounting itself, timed in isolation (robust to a busy machine).
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        meter.open("x").close()
    window_us = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        meter.tick()
    tick_us = (time.perf_counter() - t0) / n * 1e6
    token_us = 1e6 / max(rates["off"])
    print(f"accounting cost: open+close {window_us:.0f} us per request, tick {tick_us:.0f} us per token "
          f"= {tick_us / token_us:.2%} of a {token_us / 1000:.1f} ms token "
          f"(implied ratio with per-token sampling {token_us / (token_us + tick_us):.3f})")


if __name__ == "__main__":
    main()
