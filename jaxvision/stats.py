"""How far a held-out accuracy can be trusted, and what a classifier confuses: maths on counts.

* `wilson_interval`: the 95 % interval of a proportion k/n (Wilson's score interval, which
  stays inside [0, 1] and is sound for small n and for k near 0 or n, unlike k/n +- 1.96 se).
* `paired_difference`: the difference of two classifiers' accuracies on the same photos, with
  a 95 % bootstrap interval over photos (resampling photos keeps the pairing: a photo both get
  right or both get wrong moves neither accuracy apart).
* `confusion_matrix`, `per_class_accuracy` and `most_confused`: from labels and predictions.
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval of `successes` out of `n` (n >= 1)."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"wilson_interval needs 0 <= successes <= n and n >= 1, got {successes} of {n}.")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(
    a_correct: np.ndarray, b_correct: np.ndarray, samples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """(accuracy of a - accuracy of b, low, high): the 95 % percentile interval of the difference
    over `samples` bootstrap resamples of the photos, which both arrays list in one order."""
    a, b = np.asarray(a_correct, np.float64), np.asarray(b_correct, np.float64)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"paired_difference needs two lists of equal length, got shapes {a.shape} and {b.shape}.")
    per_photo = a - b
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for start in range(0, samples, 1000):  # bounded memory: 1000 resamples at a time
        picks = rng.integers(0, len(per_photo), size=(min(1000, samples - start), len(per_photo)))
        means[start : start + len(picks)] = per_photo[picks].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(per_photo.mean()), float(low), float(high)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted] as int64."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return counts


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Each class's share of its photos predicted right (NaN for a class with no photo)."""
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), np.nan)


def most_confused(confusion: np.ndarray, names, k: int = 10) -> list[tuple[str, str, int, int]]:
    """The `k` pairs of distinct classes most often mistaken for each other, either way:
    (name, other name, photos of the first taken for the second, of the second for the first),
    most mistakes first, ties by class order."""
    either_way = confusion + confusion.T
    upper = np.triu(either_way, k=1)
    pairs = [(int(upper[i, j]), i, j) for i, j in zip(*np.nonzero(upper))]
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [(names[i], names[j], int(confusion[i, j]), int(confusion[j, i])) for _, i, j in pairs[:k]]
