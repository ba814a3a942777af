"""How many more training photos a scaling curve says a target needs: a saturating power law
fitted to its points, with a bootstrap over the held-out photos.

The held-out top-1 of a curve's runs at x training photos per class is fitted by least squares
with acc(x) = ceiling - b * x**-a (b, a > 0; the ceiling at most 1: an accuracy cannot pass it).
The x at which the fit reaches a target follows in closed form, x = (b / (ceiling - target))**(1/a),
and is infinite where the ceiling lies at or below the target. Every point is scored on the same
photos, so a resample of the photos (the same draw for every point) refits the whole curve;
the 2.5 and 97.5 % quantiles of the refits bound the ceiling and the x (an interval over the
held-out photos only: the draw of training photos behind each point is held fixed).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.optimize import curve_fit

MIN_POINTS = 4  # three parameters and at least one point to spare


class Fit(NamedTuple):
    ceiling: float
    scale: float
    exponent: float

    def __call__(self, x):
        return self.ceiling - self.scale * np.asarray(x, np.float64) ** -self.exponent

    def reach(self, target: float) -> float:
        """Training photos per class at which the fit reaches `target` (inf: it never does)."""
        if self.ceiling <= target:
            return math.inf
        return float((self.scale / (self.ceiling - target)) ** (1 / self.exponent))


def fit(x, accuracy) -> Fit:
    """The least-squares saturating power law through (x, accuracy) points."""
    x, y = np.asarray(x, np.float64), np.asarray(accuracy, np.float64)
    if len(x) < MIN_POINTS or len(x) != len(y) or (x <= 0).any():
        raise ValueError(
            f"a scaling fit needs at least {MIN_POINTS} points with x > 0, "
            f"got x={x.tolist()} and accuracy={y.tolist()}."
        )
    start = (min(1.0, y.max() + 0.05), max(y.max() - y.min(), 1e-3), 0.5)
    params, _ = curve_fit(
        lambda x, c, b, a: c - b * x**-a, x, y, p0=start, bounds=([0.0, 0.0, 1e-3], [1.0, 10.0, 5.0]), maxfev=20_000
    )
    return Fit(*map(float, params))


def extrapolate(x, correct, target: float, at=(), samples: int = 1000, seed: int = 0) -> dict:
    """The fit of the curve whose point i scored `correct[i]` (1/0 per held-out photo, the same
    photos in one order for every point), its ceiling, the x reaching `target` and its accuracy
    at each x of `at`, each as (value, low, high) with its 95 % bootstrap interval over the
    photos (an x of inf: not reached)."""
    hits = np.asarray(correct, np.float64)
    if hits.ndim != 2 or hits.shape[0] != len(x) or not hits.shape[1]:
        raise ValueError(f"extrapolate needs one row of per-photo correctness per point, got shape {hits.shape}.")
    best = fit(x, hits.mean(axis=1))
    rng = np.random.default_rng(seed)
    ceilings, reaches, predicted = np.empty(samples), np.empty(samples), np.empty((samples, len(at)))
    for i in range(samples):
        refit = fit(x, hits[:, rng.integers(0, hits.shape[1], hits.shape[1])].mean(axis=1))
        ceilings[i], reaches[i], predicted[i] = refit.ceiling, refit.reach(target), refit(at)
    quantiles = lambda v: tuple(float(q) for q in np.quantile(v, [0.025, 0.975], method="inverted_cdf"))
    return {
        "fit": best._asdict(),
        "target": target,
        "samples": samples,
        "ceiling": (best.ceiling, *quantiles(ceilings)),
        "reach": (best.reach(target), *quantiles(reaches)),
        "at": [{"x": float(a), "accuracy": (float(best(a)), *quantiles(predicted[:, j]))} for j, a in enumerate(at)],
    }
