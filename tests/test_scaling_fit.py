"""The scaling curve's extrapolation: a saturating power law recovered from points it made,
its closed-form reach, and bootstrap intervals that hold the truth on simulated photos."""

import math

import numpy as np
import pytest

from jaxvision.research import scaling_fit

X = np.array([1, 2, 4, 8, 16, 24.0])
TRUE = scaling_fit.Fit(ceiling=0.92, scale=0.5, exponent=0.7)


def test_the_fit_recovers_the_law_behind_exact_points_and_its_reach():
    found = scaling_fit.fit(X, TRUE(X))
    # float64 least squares on exact points: recovered to the solver's tolerance, not to the ulp.
    assert found == pytest.approx(TRUE, abs=1e-6)
    # 0.9 = 0.92 - 0.5 x^-0.7  =>  x = (0.5 / 0.02)^(1 / 0.7), worked by hand: 25^(10/7) = e^(4.598) = 99.32
    assert TRUE.reach(0.9) == pytest.approx(25 ** (1 / 0.7)) and 99.3 < TRUE.reach(0.9) < 99.4
    assert TRUE.reach(0.92) == math.inf and TRUE.reach(0.95) == math.inf  # at or above the ceiling


def test_the_ceiling_stays_at_most_one_and_too_few_points_are_refused():
    rising = 1.2 - 0.8 * X**-0.5  # would pass 1 beyond the curve
    assert scaling_fit.fit(X, np.minimum(rising, 0.99)).ceiling <= 1.0
    with pytest.raises(ValueError, match="at least 4 points"):
        scaling_fit.fit(X[:3], TRUE(X[:3]))


def test_the_bootstrap_intervals_hold_the_truth_on_simulated_photos():
    rng = np.random.default_rng(0)
    photos = 4000  # many photos: intervals narrow enough to fail if they were centred wrong
    correct = (rng.random((len(X), photos)) < TRUE(X)[:, None]).astype(np.float64)
    found = scaling_fit.extrapolate(X, correct, target=0.85, at=(76.0,), samples=200)
    value, low, high = found["ceiling"]
    assert low <= TRUE.ceiling <= high and low <= value <= high and high - low < 0.2
    value, low, high = found["reach"]
    assert low <= TRUE.reach(0.85) <= high
    (at,) = found["at"]
    assert at["x"] == 76.0 and at["accuracy"][1] <= TRUE(76.0) <= at["accuracy"][2]
    with pytest.raises(ValueError, match="one row of per-photo correctness per point"):
        scaling_fit.extrapolate(X, correct[:3], target=0.85)
