import numpy as np
import pytest

from covey.router.evaluation import score_routes
from covey.router.head import (
    CentroidHead,
    LogisticHead,
    calibrate_fallback,
    calibrate_threshold,
    fit_head,
    load_head,
    out_of_fold,
    save_head,
)


def blobs(seed=0):
    rng = np.random.default_rng(seed)
    centers = {"a": [1, 0, 0], "b": [0, 1, 0], "c": [0, 0, 1]}
    x, y = [], []
    for label, c in centers.items():
        x.append(np.asarray(c) + 0.1 * rng.standard_normal((20, 3)))
        y += [label] * 20
    return np.vstack(x).astype(np.float32), y


@pytest.mark.parametrize("kind", ["logistic", "centroid"])
def test_heads_separate_clusters_and_round_trip_through_a_file(kind, tmp_path):
    x, y = blobs()
    head = fit_head(kind, x, y)
    assert head.classes == ("a", "b", "c")
    pred = [head.classes[i] for i in head.probabilities(x).argmax(axis=1)]
    assert pred == y
    save_head(tmp_path / "h.npz", head, threshold=0.3, meta="key")
    loaded, threshold, meta = load_head(tmp_path / "h.npz")
    assert (threshold, meta, loaded.kind, loaded.classes) == (0.3, "key", kind, head.classes)
    assert np.allclose(loaded.probabilities(x), head.probabilities(x), atol=1e-6)


def test_unknown_head_is_refused():
    x, y = blobs()
    with pytest.raises(ValueError, match="unknown head"):
        fit_head("forest", x, y)


def test_logistic_balances_unequal_classes():
    x, y = blobs()
    keep = [i for i, label in enumerate(y) if label != "c" or i % 10 == 0]
    head = LogisticHead.fit(x[keep], [y[i] for i in keep])
    assert head.probabilities(np.asarray([[0, 0, 1]], np.float32)).argmax() == 2


def test_out_of_fold_gives_every_row_a_prediction_from_a_head_that_never_saw_it():
    x, y = blobs()
    probs = out_of_fold("centroid", x, y, folds=4)
    assert probs.shape == (60, 3)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert isinstance(CentroidHead.fit(x, y), CentroidHead)


def test_threshold_is_where_low_confidence_predictions_turn_mostly_wrong():
    right_sure = [[0.9, 0.05, 0.05]] * 4
    right_near = [[0.52, 0.24, 0.24]] * 6
    wrong_low = [[0.3, 0.4, 0.3], [0.3, 0.45, 0.25]] * 2
    probs = np.asarray(right_sure + right_near + wrong_low)
    truth = [0] * len(probs)
    # below 0.5 only the four wrong rows; below 0.55 six right rows join them (60 % right)
    assert calibrate_threshold(probs, truth) == pytest.approx(0.5)
    assert calibrate_threshold(probs, [int(p.argmax()) for p in probs]) == pytest.approx(0.2)


def test_scores_match_hand_counts():
    truth = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "b", "chat"]
    r = score_routes(truth, pred, fallbacks=1)
    assert r.accuracy == pytest.approx(4 / 6)
    assert r.score("a").precision == 1.0 and r.score("a").recall == pytest.approx(2 / 3)
    assert r.score("b").precision == pytest.approx(2 / 3) and r.score("b").recall == 1.0
    assert r.score("c").f1 == 0.0
    # macro-F1 over the labelled routes a, b, c only
    assert r.macro_f1 == pytest.approx((0.8 + 0.8 + 0.0) / 3)
    assert r.routes == ("a", "b", "c", "chat")
    assert r.confusion[2] == (0, 0, 0, 1)
    assert r.fallbacks == 1


def test_scores_refuse_mismatched_lengths():
    with pytest.raises(ValueError):
        score_routes(["a"], [])


def test_balanced_weights_give_each_route_and_each_source_within_it_equal_mass():
    from covey.router.head import balanced_weights

    labels = ["a"] * 8 + ["b"] * 2
    groups = ["big"] * 6 + ["small"] * 2 + ["big"] * 2
    w = balanced_weights(labels, groups)
    assert w.mean() == pytest.approx(1.0)
    assert w[:8].sum() == pytest.approx(w[8:].sum())  # routes weigh the same
    assert w[:6].sum() == pytest.approx(w[6:8].sum())  # within route a, the two sources weigh the same
    assert np.allclose(balanced_weights(labels), np.r_[[10 / 16] * 8, [10 / 4] * 2])  # no groups: classes only
    with pytest.raises(ValueError, match="length"):
        balanced_weights(labels, groups[:3])


def test_source_weights_keep_a_large_source_from_setting_the_boundary():
    # Route "a" has 40 examples from one source near (1, 0) and 2 from another near (0.2, 0.8); route "b"
    # sits at (0, 1). Weighted by source, the small source's corner is pulled towards "a".
    rng = np.random.default_rng(0)
    xa_big = np.c_[np.ones(40), np.zeros(40)] + 0.05 * rng.standard_normal((40, 2))
    xa_small = np.asarray([[0.25, 0.75], [0.2, 0.8]])
    xb = np.c_[np.zeros(40), np.ones(40)] + 0.05 * rng.standard_normal((40, 2))
    x = np.vstack([xa_big, xa_small, xb]).astype(np.float32)
    y = ["a"] * 42 + ["b"] * 40
    src = ["big"] * 40 + ["small"] * 2 + ["big"] * 40
    probe = np.asarray([[0.22, 0.78]], dtype=np.float32)
    plain = LogisticHead.fit(x, y).probabilities(probe)[0][0]
    balanced = LogisticHead.fit(x, y, groups=src).probabilities(probe)[0][0]
    assert balanced > plain


def test_fallback_calibration_falls_back_only_where_the_fallback_route_was_the_better_answer():
    # Three classes, fallback is class 0. Low-confidence rows (0.4): picks class 1, truth is 0 three times
    # and 1 once, so falling back would have been right more often. High-confidence rows are right.
    low = [[0.3, 0.4, 0.3]] * 4
    high = [[0.05, 0.9, 0.05]] * 6
    probs = np.asarray(low + high)
    assert calibrate_fallback(probs, [0, 0, 0, 1] + [1] * 6, fallback=0) == pytest.approx(0.6)  # grid top
    # Same confidences, but the low rows' truth is class 2: falling back to 0 would not have helped.
    assert calibrate_fallback(probs, [2, 2, 1, 1] + [1] * 6, fallback=0) == 0.0
