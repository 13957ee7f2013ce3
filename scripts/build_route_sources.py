"""Build the router's per-source training files from public prompts (not part of the package).

Reads data/route_sources/raw/<source>.jsonl ({"prompt", "category"}) and the category -> route
mapping in data/route_sources/mappings/<source>.toml, then for every source in SOURCES order:
maps categories (an unmapped category is an error; a category mapped to "" is dropped), cuts long
prompts to what the router reads, drops exact duplicates (normalised text) and, with --near-dup,
near-duplicates (MiniLM cosine > 0.95) of anything kept before (covey's own examples and the
held-out test prompts come first), caps each route of a source, and writes
src/covey/data/routes/sources/<source>.jsonl with {"prompt", "route", "source"} lines.

    PYTHONPATH=src .venv/bin/python scripts/build_route_sources.py --near-dup
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "route_sources"
OUT = ROOT / "src" / "covey" / "data" / "routes" / "sources"
HELDOUT = ROOT / "tests" / "data" / "router_heldout.jsonl"
SOURCES = ("mt_bench", "vicuna", "humaneval", "mbpp", "gsm8k", "dolly", "flan", "self_instruct", "oasst", "ifeval")
CAP_PER_ROUTE = 80
"""At most this many prompts of one route from one source, so no source dominates a route."""
MAX_CHARS = 1500
"""Longer prompts are cut: the router embeds 300 characters of instruction and reads the pasted
material's length only up to ~3000 characters, so the rest would just be shipped bytes."""
NEAR_DUP = 0.95


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def cut(text: str) -> str:
    text = text.strip()
    if len(text) <= MAX_CHARS:
        return text
    head = text[:MAX_CHARS]
    return head[: head.rfind(" ")] if " " in head[-200:] else head


def load_rows(source: str) -> list[dict]:
    mapping = tomllib.loads((RAW / "mappings" / f"{source}.toml").read_text(encoding="utf-8"))
    routes: dict[str, str] = mapping["routes"]
    rows = []
    for n, line in enumerate((RAW / "raw" / f"{source}.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        row = json.loads(line)
        if row.get("dropped"):
            continue
        category = row["category"]
        if category not in routes:
            sys.exit(f"{source}.jsonl:{n}: category {category!r} is not in mappings/{source}.toml; map it or map it to \"\"")
        if routes[category]:
            rows.append({"prompt": cut(row["prompt"]), "route": routes[category], "source": source})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--near-dup", action="store_true", help="also drop near-duplicates by MiniLM cosine (loads the model)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    reserved = [json.loads(line)["prompt"] for p in sorted((OUT.parent).glob("*.jsonl")) for line in p.open(encoding="utf-8")]
    reserved += [json.loads(line)["prompt"] for line in HELDOUT.open(encoding="utf-8") if line.strip()]
    seen = {normalise(p) for p in reserved}
    embed = None
    kept_vecs = None
    if args.near_dup:
        import numpy as np

        from covey.router.embedding import PackagedMiniLM

        model = PackagedMiniLM(threads=1)

        def embed(texts: list[str]) -> np.ndarray:
            return model.embed([t[:300] for t in texts])

        kept_vecs = embed(reserved)
    OUT.mkdir(parents=True, exist_ok=True)
    report = []
    for source in SOURCES:
        rows = load_rows(source)
        n_raw = len(rows)
        fresh = []
        for r in rows:
            key = normalise(r["prompt"])
            if key not in seen:
                seen.add(key)
                fresh.append(r)
        n_exact = n_raw - len(fresh)
        n_near = 0
        if embed is not None and fresh:
            import numpy as np

            vecs = embed([r["prompt"] for r in fresh])
            keep = []
            for i, v in enumerate(vecs):
                if kept_vecs is not None and len(kept_vecs) and float((kept_vecs @ v).max()) > NEAR_DUP:
                    n_near += 1
                    continue
                keep.append(i)
                kept_vecs = np.vstack([kept_vecs, v[None, :]]) if kept_vecs is not None else v[None, :]
            fresh = [fresh[i] for i in keep]
        by_route: dict[str, list[dict]] = {}
        for r in fresh:
            by_route.setdefault(r["route"], []).append(r)
        out = []
        for route in sorted(by_route):
            group = by_route[route]
            out.extend(rng.sample(group, CAP_PER_ROUTE) if len(group) > CAP_PER_ROUTE else group)
        with (OUT / f"{source}.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in out)
        counts = Counter(r["route"] for r in out)
        report.append((source, n_raw, n_exact, n_near, len(out), counts))
    print(f"{'source':10} {'mapped':>6} {'dup':>4} {'near':>4} {'kept':>5}  routes")
    for source, n_raw, n_exact, n_near, n_out, counts in report:
        print(f"{source:10} {n_raw:6} {n_exact:4} {n_near:4} {n_out:5}  " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
