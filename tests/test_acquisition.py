"""Acquisition functions and Pareto helpers (screening.acquisition/pareto); batches are the
proposer's (tests/test_optimizer.py)."""

from __future__ import annotations

import numpy as np
import pytest

from screening.acquisition import (
    AcquisitionError,
    expected_improvement,
    match_made,
    probability_of_improvement,
    upper_confidence_bound,
)
from screening.pareto import (
    ParetoError,
    hypervolume_2d,
    non_dominated_sort,
    pareto_front,
    pareto_mask,
    scalarize,
)

# Phi(1) = 0.841344746068543, phi(1) = 0.241970724519143,
# Phi(-0.5) = 0.308537538725987, phi(0.5) = 0.352065326764300


@pytest.mark.parametrize(
    ("mu", "sigma", "best", "xi", "expected"),
    [
        (1.0, 1.0, 0.0, 0.0, 0.841344746068543 + 0.241970724519143),  # z = 1
        (0.0, 2.0, 1.0, 0.0, -0.308537538725987 + 2 * 0.352065326764300),  # z = -0.5
        (1.5, 1.0, 0.0, 0.5, 0.841344746068543 + 0.241970724519143),  # xi shifts best
        (2.0, 0.0, 1.0, 0.0, 1.0),  # no uncertainty: plain improvement
        (0.5, 0.0, 1.0, 0.0, 0.0),
    ],
)
def test_expected_improvement_hand_values(mu, sigma, best, xi, expected):
    assert expected_improvement([mu], [sigma], best, xi)[0] == pytest.approx(expected, rel=1e-12)


def test_probability_of_improvement_and_ucb_hand_values():
    assert probability_of_improvement([1.0], [1.0], 0.0)[0] == pytest.approx(0.841344746068543)
    assert probability_of_improvement([1.0, 0.0], [0.0, 0.0], 0.5).tolist() == [1.0, 0.0]
    assert upper_confidence_bound([1.0], [0.5], beta=4.0)[0] == pytest.approx(2.0)
    assert upper_confidence_bound([1.0], [0.5], beta=0.0)[0] == pytest.approx(1.0)
    with pytest.raises(AcquisitionError, match="beta"):
        upper_confidence_bound([1.0], [0.5], beta=-1)


def test_ei_is_monotone_in_mean_and_sigma():
    mu = np.linspace(-2, 2, 41)
    ei = expected_improvement(mu, np.ones_like(mu), 0.0)
    assert np.all(np.diff(ei) > 0)
    sig = np.linspace(0.1, 3, 30)
    assert np.all(np.diff(expected_improvement(np.zeros(30), sig, 0.5)) > 0)


def test_match_made_tolerance_per_feature():
    cand = np.array([[0.5, 10.0], [0.5, 10.4], [0.52, 10.0]])
    made = np.array([[0.5, 10.0]])
    assert match_made(cand, made, tol=[0.01, 0.5]).tolist() == [True, True, False]
    assert match_made(cand, made, tol=0.0).tolist() == [True, False, False]
    assert match_made(cand, None).tolist() == [False] * 3
    with pytest.raises(AcquisitionError, match="features"):
        match_made(cand, np.zeros((1, 3)))


# maximise both: A(1,5) B(2,4) C(3,3) D(2,2)<-B,C  E(0,4)<-A  F = C duplicate  G(4,1)
HAND = np.array([[1, 5], [2, 4], [3, 3], [2, 2], [0, 4], [3, 3], [4, 1]], dtype=float)


def test_pareto_front_hand_set():
    assert pareto_front(HAND).tolist() == [0, 1, 2, 5, 6]
    assert non_dominated_sort(HAND).tolist() == [0, 0, 0, 1, 1, 0, 0]


def test_pareto_2d_sweep_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    F = rng.integers(0, 6, size=(300, 2)).astype(float)  # many ties and duplicates
    ge = np.all(F[None, :, :] >= F[:, None, :], axis=2)
    gt = np.any(F[None, :, :] > F[:, None, :], axis=2)
    dominated = np.any(ge & gt, axis=1)
    assert np.array_equal(pareto_mask(F), ~dominated)
    F3 = rng.normal(size=(200, 3))
    ge3 = np.all(F3[None] >= F3[:, None], axis=2)
    gt3 = np.any(F3[None] > F3[:, None], axis=2)
    assert np.array_equal(pareto_mask(F3), ~np.any(ge3 & gt3, axis=1))


def test_hypervolume_hand_value():
    # strips in f0: (0,1] height 5, (1,2] 4, (2,3] 3, (3,4] 1 -> 13
    assert hypervolume_2d(HAND, ref=(0, 0)) == pytest.approx(13.0)
    assert hypervolume_2d(HAND, ref=(2, 2)) == pytest.approx(1.0)  # only C/F (3,3) count
    assert hypervolume_2d(HAND, ref=(10, 10)) == 0.0
    with pytest.raises(ParetoError, match="2 objectives"):
        hypervolume_2d(np.ones((3, 3)), ref=(0, 0, 0))


def test_scalarize_hand_values():
    F = np.array([[0, 10], [50, 5], [100, 0]], dtype=float)
    assert scalarize(F).tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert scalarize(F, [3, 1]).tolist() == pytest.approx([0.25, 0.5, 0.75])
    assert scalarize(F, [1, 1], bounds=[(0, 100), (0, 20)]).tolist() == pytest.approx(
        [0.25, 0.375, 0.5])
    with pytest.raises(ParetoError, match="weights"):
        scalarize(F, [1, -1])
    with pytest.raises(ParetoError, match="2 values"):
        scalarize(F, [1, 1, 1])
    with pytest.raises(ParetoError, match="NaN"):
        scalarize(np.array([[np.nan, 1.0]]))
