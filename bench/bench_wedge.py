"""Wedge inputs from issue 14 against a real `covey node join` process on 127.0.0.1, side by side for two trees.

    .venv/bin/python bench/bench_wedge.py --before /work/main/src --after src [--cap 60]

For each tree (the node process runs that tree's code; the client is this one) it times:

- a ~1 MB prompt made of chat-template markers (``<|im_start|><|im_end|>`` repeated) in one message,
- 200,000 one-word messages (about 2.2 MB on the wire),
- the next ordinary request after each (does the node still serve?),
- SIGTERM sent mid-generation, and SIGTERM sent while the node works on the marker prompt: time to exit.

Each wait is capped at --cap seconds (a capped figure prints as ">cap"); a node still wedged at the cap is
killed and a new one started. SmolLM2 (bundled, offline), one llama.cpp thread, no announcement. The client
is this tree's: before the change a too-large request was reported as NodeBusy, now as RequestTooLarge.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from covey.device_node.service import collect  # noqa: E402
from covey.errors import CoveyError  # noqa: E402
from covey.orchestrator.client import GrpcNodeClient  # noqa: E402
from covey.types import GenerateRequest, Message, ModelId, RequestId, Sampling, TokenPiece  # noqa: E402

SMOLLM = "smollm2-135m-instruct-q4_1"
MARKERS = "<|im_start|><|im_end|>"


class Node:
    def __init__(self, src: Path, data: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "COVEY_NODE__ANNOUNCE": "false", "COVEY_NODE__N_THREADS": "1", "COVEY_ORCHESTRATOR__DISCOVER": "false"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "covey.cli", "node", "join", "--no-announce", "--no-bench", "--port", "0",
             "--model", SMOLLM, "--data-dir", str(data)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, env=env)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in self.proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        self.address = ""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if " serving on " in line:
                host, port = line.split(" serving on ")[1].split(":")[:2]
                self.address = f"{host}:{port}"
            if line.strip() == "ready":
                return
        raise SystemExit("node did not start")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def sigterm_exit_s(self, cap: float) -> float | None:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=cap)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        return time.monotonic() - t0


def request(**kw) -> GenerateRequest:
    return GenerateRequest(request_id=RequestId("bench"), model_id=ModelId(SMOLLM),
                           sampling=Sampling(temperature=0.0, seed=0), **kw)


async def timed(address: str, req: GenerateRequest, cap: float) -> tuple[float | None, str]:
    client = GrpcNodeClient(address)
    t0 = time.monotonic()
    try:
        _, final = await asyncio.wait_for(collect(client.generate(req)), cap)
        return time.monotonic() - t0, f"answered ({final.finish_reason.value}, {final.prompt_tokens} prompt tokens)"
    except asyncio.TimeoutError:
        return None, "no answer"
    except CoveyError as exc:
        return time.monotonic() - t0, f"{type(exc).__name__}: {str(exc)[:90]}"
    finally:
        await client.close()


def fmt(t: float | None, cap: float) -> str:
    return f">{cap:.0f} s" if t is None else f"{t:.2f} s"


def wedge_case(src: Path, work: Path, name: str, req: GenerateRequest, cap: float) -> dict[str, str]:
    node = Node(src, work / name)
    try:
        t, what = asyncio.run(timed(node.address, req, cap))
        t_next, what_next = asyncio.run(timed(node.address, request(prompt="The sky is", max_tokens=4), cap))
        return {"outcome": f"{fmt(t, cap)} {what}", "next": f"{fmt(t_next, cap)} {what_next}"}
    finally:
        node.kill()


async def start_stream(address: str, req: GenerateRequest, first: threading.Event) -> None:
    client = GrpcNodeClient(address)
    try:
        async for ev in client.generate(req):
            if isinstance(ev, TokenPiece):
                first.set()
    except CoveyError:
        pass
    finally:
        await client.close()


def sigterm_case(src: Path, work: Path, name: str, req: GenerateRequest, cap: float, wait_first: bool) -> str:
    node = Node(src, work / name)
    first = threading.Event()
    runner = threading.Thread(target=lambda: asyncio.run(start_stream(node.address, req, first)), daemon=True)
    runner.start()
    if wait_first:
        first.wait(60)
    else:
        time.sleep(2.0)  # the node is inside the wedge by now
    t = node.sigterm_exit_s(cap)
    return fmt(t, cap)


def run_tree(src: Path, cap: float) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        markers = request(messages=(Message(role="user", content=MARKERS * (1_000_000 // len(MARKERS))),))
        many = request(messages=tuple(Message(role="user", content="word") for _ in range(200_000)))
        long_gen = request(prompt="Write a very long story about the sea.", max_tokens=2000)
        out = {}
        r = wedge_case(src, work, "markers", markers, cap)
        out["1 MB of markers"], out["  next request"] = r["outcome"], r["next"]
        r = wedge_case(src, work, "many", many, cap)
        out["200,000 messages"], out["  next request "] = r["outcome"], r["next"]
        out["SIGTERM mid-generation: exit"] = sigterm_case(src, work, "term-gen", long_gen, cap, wait_first=True)
        out["SIGTERM during 1 MB markers: exit"] = sigterm_case(src, work, "term-wedge", markers, cap, wait_first=False)
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="src/ of the tree to compare against")
    ap.add_argument("--after", type=Path, default=ROOT / "src", help="src/ of this tree")
    ap.add_argument("--cap", type=float, default=60.0, help="longest wait per step (s)")
    args = ap.parse_args()
    before = run_tree(args.before.resolve(), args.cap)
    after = run_tree(args.after.resolve(), args.cap)
    print(f"load average {os.getloadavg()[0]:.1f}; cap {args.cap:.0f} s")
    width = max(len(k) for k in before)
    print(f"{'case':<{width}}  {'before':<60}  after")
    for key in before:
        print(f"{key:<{width}}  {before[key]:<60}  {after[key]}")


if __name__ == "__main__":
    main()
