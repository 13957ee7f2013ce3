"""The fitted expression ranker: shipped weights and provenance, features, probabilities, a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from covey.errors import ToolError
from covey.tools import expression_ranker as er

TOM = "Tom has 3 boxes with 12 apples in each box. He eats 5 apples. How many apples are left?"


def test_the_shipped_weights_fit_this_covey_and_say_where_they_came_from() -> None:
    weights = er.shipped_weights()
    assert weights.shape == (er.DIM,) and np.isfinite(weights).all() and np.abs(weights).sum() > 0
    source = er.provenance()
    assert "MAWPS" in source["data"] and "MIT" in source["data"] and "unstated" in source["data"]
    assert "data/word_problems/mawps_fold1.tsv" in source["held_out"]  # never fitted on what is reported
    assert 0.5 <= source["confident_threshold"] <= 1 and source["dim"] == er.DIM


def test_features_count_stated_numbers_used_and_whole_results() -> None:
    problem = er.read_problem(TOM)
    row = {c.expression: k for k, c in enumerate(problem.candidates)}
    hand = dict(zip(er._HAND, problem.dense[row["(3 * 12) - 5"]]))  # noqa: SLF001
    assert hand["all_stated_used"] == 1 and hand["integer"] == 1 and hand["op*"] == 1 and hand["op-"] == 1
    half = dict(zip(er._HAND, problem.dense[row["5 / 3"]]))  # noqa: SLF001
    assert half["all_stated_used"] == 0 and half["count_not_integer"] == 1


def test_rank_gives_distinct_values_with_probabilities_best_first() -> None:
    ranked = er.rank(TOM, top=5)
    assert len(ranked) == 5 and len({r.value for r in ranked}) == 5
    probs = [r.probability for r in ranked]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9


def test_scores_follow_the_weights() -> None:
    problem = er.read_problem(TOM)
    weights = np.zeros(er.DIM)
    weights[er._HAND.index("op-")] = 5.0  # noqa: SLF001
    best = er.rank_values(problem, weights, top=1)[0]
    assert "-" in best.expression


def test_missing_weights_are_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(er, "WEIGHTS_PATH", tmp_path / "none.npz")
    er.shipped_weights.cache_clear()
    try:
        with pytest.raises(ToolError, match="fit_expression_ranker"):
            er.shipped_weights()
    finally:
        er.shipped_weights.cache_clear()


def test_the_default_confidence_is_the_threshold_the_fit_chose() -> None:
    from covey.settings import OrchestratorSettings

    assert OrchestratorSettings().ranker_confidence == er.provenance()["confident_threshold"]
