"""EASE (Steck 2019): the closed form against a direct NumPy solve, what its scores can and
cannot recommend, and the lambda walk on validation."""

import numpy as np
import pytest

from recsys_dagster.ml.evaluation.ease import (
    LAMBDA_GRID,
    EaseScorer,
    binary_matrix,
    choose_lambda,
    ease_weights,
    gram,
)
from recsys_dagster.ml.evaluation.evaluate import EvaluationParams, ease_per_user
from recsys_dagster.ml.evaluation.scoring import Catalogue


def test_ease_equals_a_direct_numpy_solve():
    rng = np.random.default_rng(3)
    n_users, n_items = 40, 2200  # more than one mirrored block of rows
    users, items = rng.integers(0, n_users, 900), rng.integers(0, n_items, 900)
    x = binary_matrix(users, items, n_users, n_items)
    assert x.max() == 1.0  # a repeated (user, item) still counts once
    g = gram(x)
    dense = x.toarray().astype(np.float64)
    np.testing.assert_array_equal(g, dense.T @ dense)
    lam = 7.5
    p = np.linalg.inv(dense.T @ dense + lam * np.eye(n_items))
    expected = np.eye(n_items) - p / np.diag(p)[None, :]
    b = ease_weights(g, lam)
    assert b.dtype == np.float32 and b.shape == (n_items, n_items)
    assert np.all(np.diag(b) == 0)
    np.testing.assert_allclose(b, expected, atol=2e-5)
    with pytest.raises(ValueError, match="lambda > 0"):
        ease_weights(g, 0.0)


def test_ease_scores_follow_co_listening_and_never_cross_disjoint_groups():
    # Two listener groups on disjoint items (a checkerboard): items 0-3 and 4-7.
    rows = [(u, i) for u in range(6) for i in range(4) if (u + i) % 4 != 0]
    rows += [(u, i) for u in range(6, 12) for i in range(4, 8)]
    users, items = map(np.array, zip(*rows))
    b = ease_weights(gram(binary_matrix(users, items, 12, 8)), 1.0)
    scores = EaseScorer(b).scores(None, [np.array([0, 1, 2]), np.array([4, 5])])
    assert scores.shape == (2, 8)
    assert np.all(scores[0, 4:] == 0) and np.all(scores[1, :4] == 0)
    assert scores[0, 3] > 0  # the group's unplayed item is what the first user gets
    assert scores[1, 6] > 0 and scores[1, 7] > 0


def test_choose_lambda_walks_to_the_best_grid_value():
    visits = []

    def peaked(at):
        def score(lam):
            visits.append(lam)
            return -abs(np.log10(lam) - np.log10(at))
        return score

    best, seen = choose_lambda(peaked(1000.0))
    assert best == 1000.0 and seen[1000.0] == 0.0
    assert set(visits) == set(seen) and len(seen) < len(LAMBDA_GRID)
    visits.clear()
    best, seen = choose_lambda(peaked(1.0))  # below the start: walks down to the grid's end
    assert best == min(LAMBDA_GRID) == 1.0
    best, seen = choose_lambda(lambda lam: 0.5)  # flat: the start, not a walk
    assert best == 100.0 and len(seen) == 3


def test_ease_is_skipped_with_the_reason_above_its_catalogue_limit():
    cat = Catalogue(np.arange(50), None, np.ones(50), 10)
    for params, reason in ((EvaluationParams(ease_max_items=49), "ease_max_items is 49"),
                           (EvaluationParams(ease_max_items=0), "ease_max_items is 0")):
        per_user, info = ease_per_user(None, None, cat, params)
        assert per_user is None and reason in info["ease/skipped"]
        assert "50 items" in info["ease/skipped"]
    per_user, info = ease_per_user(None, None, cat, EvaluationParams())
    assert per_user is None and info == {"ease/skipped": "no validation part to choose lambda on"}
