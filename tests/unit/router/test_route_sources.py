"""The public prompts the router trains on: every source has its mapping, licence and provenance, and no
prompt is shipped twice."""

import json
import re
import tomllib
from collections import Counter
from pathlib import Path

from covey.router.classifier import BUILTIN_ROUTES, builtin_examples

ROOT = Path(__file__).resolve().parents[3]
RAW = ROOT / "data" / "route_sources"
SHIPPED = ROOT / "src" / "covey" / "data" / "routes" / "sources"


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def test_every_raw_source_has_a_mapping_with_licence_and_provenance():
    raws = sorted(p.stem for p in (RAW / "raw").glob("*.jsonl"))
    assert {"dolly", "flan", "mbpp", "mt_bench"} <= set(raws)
    for source in raws:
        mapping = tomllib.loads((RAW / "mappings" / f"{source}.toml").read_text(encoding="utf-8"))
        assert mapping["source"] == source
        assert mapping["license"] and mapping["url"].startswith("https://") and mapping["taken"]
        routes = mapping["routes"]
        assert set(routes.values()) <= set(BUILTIN_ROUTES) | {""}
        categories = {json.loads(line)["category"] for line in (RAW / "raw" / f"{source}.jsonl").open(encoding="utf-8")}
        assert categories <= set(routes), f"{source}: unmapped categories {categories - set(routes)}"


def test_every_shipped_source_is_in_the_provenance_table():
    provenance = (SHIPPED / "PROVENANCE.md").read_text(encoding="utf-8")
    for path in SHIPPED.glob("*.jsonl"):
        rows = [json.loads(line) for line in path.open(encoding="utf-8")]
        assert rows and {r["source"] for r in rows} == {path.stem}
        assert f"| `{path.stem}` |" in provenance


def test_no_prompt_is_shipped_twice_across_sources():
    counts = Counter(_normalised(ex.prompt) for ex in builtin_examples())
    assert [p for p, n in counts.items() if n > 1] == []


def test_pasted_material_does_not_make_a_source_summarize():
    """Questions about a pasted passage (Dolly closed_qa, FLAN squad_v1) and writing from pasted data are
    shipped under their instruction's route, so material alone cannot stand for summarize."""
    with_material = [ex for ex in builtin_examples() if ex.source in ("dolly", "flan") and "\n\n" in ex.prompt
                     and len(ex.prompt) > 300]
    routes = Counter(ex.route for ex in with_material)
    assert routes["summarize"] > 0
    assert routes["knowledge"] + routes["writing"] > 0
