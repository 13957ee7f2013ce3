from __future__ import annotations

import json
from pathlib import Path

import pytest

from covey.errors import BadRequest
from covey.rag import Store, evaluate, load_cases


def test_recall_and_mrr(store: Store, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in {"cats.md": "cats purr and meow", "dogs.md": "dogs bark and fetch",
                       "fish.md": "fish swim in water"}.items():
        (docs / name).write_text(text + "\n")
    store.add([docs])
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join([
        json.dumps({"query": "purr meow", "expected_sources": ["cats.md"]}),
        "# a comment",
        json.dumps({"query": "swim water bark", "expected_sources": ["docs/fish.md", str(docs / "dogs.md")]}),
        json.dumps({"query": "zebra", "expected_sources": ["zebra.md"]}),
    ]) + "\n")
    report = evaluate(store, load_cases(cases))
    assert report.cases == 3
    assert report.recall[1] == pytest.approx((1 + 0.5 + 0) / 3)
    assert report.recall[5] == pytest.approx((1 + 1 + 0) / 3)
    assert report.mrr == pytest.approx((1 + 1 + 0) / 3)
    assert report.results[2].first_hit_rank is None


def test_bad_case_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "x"}\n')
    with pytest.raises(BadRequest, match="bad.jsonl:1"):
        load_cases(bad)
    with pytest.raises(BadRequest, match="cannot read"):
        load_cases(tmp_path / "missing.jsonl")
