"""pytest's default import mode needs a unique basename for every test module outside a package."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_names_are_unique_outside_packages() -> None:
    loose = [p for p in TESTS.rglob("test_*.py") if not (p.parent / "__init__.py").exists()]
    clashes = [name for name, n in Counter(p.name for p in loose).items() if n > 1]
    assert not clashes, f"rename one of each: {clashes}"
