"""gRPC path overhead: tokens/s through a node over loopback divided by a direct llama-cpp-python call.

Real SmolLM2-135M. Three paths, interleaved round by round so machine drift affects all alike:
  direct   llama_cpp.Llama.generate in this process (the baseline)
  backend  covey's LlamaBackend.run in this process (adds log-probabilities and incremental detokenizing)
  grpc     a `covey node join` process on 127.0.0.1, driven through GrpcNodeClient
Same prompt, temperature 0, same max_tokens and thread count; every path evaluates the prompt from
scratch and generates exactly `--tokens` tokens (the prompt keeps SmolLM2 telling a story).
Prints the median tokens/s ratio (target >= 0.95) and the added time to first token (target < 15 ms).
Not a test: run `python bench/bench_grpc.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from llama_cpp import Llama

from covey.device_node.backend import LlamaBackend
from covey.models.catalog import Catalog
from covey.orchestrator.client import GrpcNodeClient
from covey.types import GenerateFinal, GenerateRequest, ModelId, RequestId, Sampling

MODEL = "smollm2-135m-instruct-q4_1"
PROMPT = "Once upon a time"
N_CTX = 512


@dataclass
class Run:
    tokens: int
    ttft_ms: float
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def request(tokens: int) -> GenerateRequest:
    return GenerateRequest(request_id=RequestId("bench"), model_id=ModelId(MODEL), prompt=PROMPT, max_tokens=tokens,
                           sampling=Sampling(temperature=0.0))


def run_direct(llm: Llama, tokens: int) -> Run:
    s = request(tokens).sampling
    t0 = time.perf_counter()
    first = None
    n = 0
    llm.reset()
    for _ in llm.generate(llm.tokenize(PROMPT.encode(), add_bos=True, special=True), top_k=s.top_k, top_p=s.top_p,
                          temp=s.temperature, repeat_penalty=s.repeat_penalty, reset=True):
        n += 1
        if first is None:
            first = time.perf_counter()
        if n >= tokens:
            break
    end = time.perf_counter()
    return Run(n, ((first or end) - t0) * 1000.0, end - t0)


def run_backend(backend: LlamaBackend, tokens: int) -> Run:
    t0 = time.perf_counter()
    first: list[float] = []

    def on_piece(_piece) -> None:
        if not first:
            first.append(time.perf_counter())

    stats = backend.run(request(tokens), on_piece)
    end = time.perf_counter()
    return Run(stats.completion_tokens, ((first or [end])[0] - t0) * 1000.0, end - t0)


async def run_grpc(client: GrpcNodeClient, tokens: int) -> Run:
    t0 = time.perf_counter()
    first = None
    final = None
    async for ev in client.generate(request(tokens)):
        if isinstance(ev, GenerateFinal):
            final = ev
        elif first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    assert final is not None
    return Run(final.completion_tokens, ((first or end) - t0) * 1000.0, end - t0)


def start_node(threads: int, data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    covey = Path(sys.executable).parent / "covey"
    env = {**os.environ, "COVEY_DATA_DIR": str(data_dir), "COVEY_NODE__N_THREADS": str(threads),
           "COVEY_NODE__N_CTX": str(N_CTX), "COLUMNS": "400", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([str(covey), "node", "join", "--port", "0", "--no-announce", "--no-bench",
                             "--model", MODEL, "--queue-limit", "1"],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    seen = ""
    for line in proc.stdout:
        seen += line
        if line.strip() == "ready":
            break
    match = re.search(r"serving on (127\.0\.0\.1:\d+)", seen)
    if not match:
        proc.kill()
        raise SystemExit(f"the node did not start:\n{seen}")
    return proc, match.group(1)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads for every path")
    args = ap.parse_args()

    spec, path = Catalog().resolve(MODEL)
    llm = Llama(model_path=str(path), n_ctx=N_CTX, n_threads=args.threads, n_threads_batch=args.threads,
                verbose=False)
    backend = LlamaBackend(spec, path, n_ctx=N_CTX, n_threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        proc, address = start_node(args.threads, Path(tmp))
        client = GrpcNodeClient(address)
        try:
            runs: dict[str, list[Run]] = {"direct": [], "backend": [], "grpc": []}
            run_direct(llm, 8), run_backend(backend, 8), await run_grpc(client, 8)  # warm-up
            for _ in range(args.rounds):
                runs["direct"].append(run_direct(llm, args.tokens))
                runs["backend"].append(run_backend(backend, args.tokens))
                runs["grpc"].append(await run_grpc(client, args.tokens))
        finally:
            await client.close()
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)

    counts = {name: {r.tokens for r in rs} for name, rs in runs.items()}
    assert all(c == {args.tokens} for c in counts.values()), f"paths generated different token counts: {counts}"
    print(f"SmolLM2-135M Q4_1, {args.tokens} tokens, {args.threads} thread(s), {args.rounds} interleaved rounds")
    print(f"{'path':8} {'tok/s (median)':>15} {'TTFT ms (median)':>17}")
    med = {}
    for name, rs in runs.items():
        med[name] = (statistics.median(r.tokens_per_second for r in rs), statistics.median(r.ttft_ms for r in rs))
        print(f"{name:8} {med[name][0]:15.1f} {med[name][1]:17.1f}")
    ratios = [g.tokens_per_second / d.tokens_per_second for g, d in zip(runs["grpc"], runs["direct"])]
    added = [g.ttft_ms - d.ttft_ms for g, d in zip(runs["grpc"], runs["direct"])]
    backend_ratio = statistics.median(b.tokens_per_second / d.tokens_per_second
                                      for b, d in zip(runs["backend"], runs["direct"]))
    ratio = statistics.median(ratios)
    print(f"grpc/direct tokens/s ratio: {ratio:.3f} (median of per-round ratios; target >= 0.95)"
          f"  [{'ok' if ratio >= 0.95 else 'BELOW TARGET'}]")
    print(f"  per-round range {min(ratios):.3f}..{max(ratios):.3f}; added TTFT range {min(added):.1f}..{max(added):.1f} ms"
          f" (wide ranges mean a busy machine: rerun when it is idle)")
    print(f"  of which backend/direct (logprobs + detokenizing, no network): {backend_ratio:.3f}")
    print(f"added time to first token over gRPC: {statistics.median(added):.1f} ms (median; target < 15 ms)"
          f"  [{'ok' if statistics.median(added) < 15 else 'ABOVE TARGET'}]")


if __name__ == "__main__":
    asyncio.run(main())
