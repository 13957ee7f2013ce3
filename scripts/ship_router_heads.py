"""Regenerate the router heads shipped in src/covey/data/router_heads (see covey.router.shipped).

    python scripts/ship_router_heads.py [--check] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from covey.router.classifier import shipped_heads_dir
    from covey.router.shipped import regenerate, stale

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only say whether the shipped heads are stale (exit 1)")
    ap.add_argument("--dir", type=Path, default=shipped_heads_dir(), help="where the shipped heads live")
    args = ap.parse_args(argv)
    if args.check:
        problems = stale(args.dir)
        for p in problems:
            print(p, file=sys.stderr)
        print("stale" if problems else "fresh")
        return 1 if problems else 0
    regenerate(args.dir, log=print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
