"""Intervals, confusions and the scaling curve: computed from kept predictions, checked here on
cases small enough to work out by hand."""

from __future__ import annotations

import os

import ml_collections
import numpy as np
import pytest

from jaxvision import stats
from jaxvision.research import claims, heldout, scaling_fit, suite, tables
from jaxvision.research.results import Estimate
from jaxvision.data.batches import per_class


def test_wilson_interval_matches_the_hand_computed_cases():
    # 8 of 10 with z = 1.96: centre (0.8 + 0.1921) / 1.3842 = 0.7166, half-width
    # 1.96 * sqrt(0.016 + 0.00960) / 1.3842 = 0.2265 (worked by hand; printed to 4 digits).
    low, high = stats.wilson_interval(8, 10)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=5e-5)
    # 0 of 10: the interval starts at 0 and its top is z^2 / (n + z^2) = 3.8415 / 13.8415.
    assert stats.wilson_interval(0, 10) == pytest.approx((0.0, 3.8415 / 13.8415), abs=5e-5)
    # paper A's 153 of 160: about +-0.03 around 0.956, not symmetric near 1.
    low, high = stats.wilson_interval(153, 160)
    assert 0.90 < low < 0.92 and 0.97 < high < 0.99 and high - 153 / 160 < 153 / 160 - low
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        stats.wilson_interval(11, 10)


def test_paired_difference_is_zero_for_the_same_run_and_bounds_the_truth():
    rng = np.random.default_rng(0)
    a = (rng.random(400) < 0.8).astype(float)
    assert stats.paired_difference(a, a) == (0.0, 0.0, 0.0)  # the pairing: no photo moves them apart
    assert stats.paired_difference(np.ones(50), np.zeros(50)) == (1.0, 1.0, 1.0)
    b = a.copy()
    b[np.flatnonzero(a)[:20]] = 0  # b misses 20 photos more: 0.05 of 400
    diff, low, high = stats.paired_difference(a, b)
    assert diff == pytest.approx(0.05) and 0 < low < diff < high < 0.1


def test_confusions_by_name_either_way_most_first():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 0, 1, 2, 2, 1])
    confusion = stats.confusion_matrix(labels, predicted, 3)
    assert confusion.tolist() == [[1, 2, 0], [1, 1, 0], [0, 1, 2]]
    np.testing.assert_allclose(stats.per_class_accuracy(confusion), [1 / 3, 1 / 2, 2 / 3])
    pairs = stats.most_confused(confusion, ["rose", "tulip", "daisy"], k=5)
    assert pairs == [("rose", "tulip", 2, 1), ("tulip", "daisy", 0, 1)]  # pairs never confused are left out


def test_per_class_draws_nest_and_keep_small_classes_whole():
    labels = np.repeat(np.arange(4), [5, 5, 5, 2])
    two, four = per_class(labels, 2, seed=3), per_class(labels, 4, seed=3)
    assert np.bincount(labels[two]).tolist() == [2, 2, 2, 2]
    assert np.bincount(labels[four]).tolist() == [4, 4, 4, 2]  # class 3 has only 2
    assert set(two) <= set(four)  # a larger draw holds the smaller
    assert not np.array_equal(per_class(labels, 2, seed=4), two)  # the seed chooses
    one_hot = np.eye(4)[labels]
    np.testing.assert_array_equal(per_class(one_hot, 2, seed=3), two)


def _kept(workdir, labels, predicted, names=("a", "b", "c")):
    os.makedirs(workdir, exist_ok=True)
    heldout.save(str(workdir), "validation", labels, np.eye(len(names))[predicted], names)


def _kept_runs(root, photos, right):
    """Runs named by `right` that get its number of the first photos right and the rest wrong."""
    labels = np.arange(photos) % 3
    for run, k in right.items():
        predicted = labels.copy()
        predicted[k:] = (labels[k:] + 1) % 3
        _kept(root / run, labels, predicted)


def test_an_interval_and_a_confusion_summary_come_from_the_kept_predictions(tmp_path):
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 2, 0, 1])
    _kept(tmp_path, labels, np.array([0, 1, 1, 1, 2, 2, 0, 2, 0, 0]))
    estimate = heldout.interval(str(tmp_path), "validation")
    assert estimate.value == pytest.approx(0.7) and (estimate.low, estimate.high) == stats.wilson_interval(7, 10)
    assert str(estimate) == f"0.7000 ({estimate.low:.3f}-{estimate.high:.3f})"
    found = heldout.summary(str(tmp_path), "validation", "run")
    text = tables.confusions(found)
    assert "| a | b | 1 | 1 |" in text and "| a | c | 0 | 1 |" in text and os.path.isfile(found["figure"])
    assert heldout.interval(str(tmp_path), "test") is None


def test_a_claim_between_two_runs_says_whether_it_is_outside_the_noise(tmp_path):
    labels = np.zeros(200, np.int64)
    good = np.zeros(200, np.int64)
    close = good.copy()
    close[:3] = 1  # 3 of 200 more mistakes: within the noise
    poor = good.copy()
    poor[:60] = 1  # 60 more: outside it
    for name, predicted in (("good", good), ("close", close), ("poor", poor)):
        _kept(tmp_path / name, labels, predicted)
    correct_of = lambda run, split: heldout.correct(str(tmp_path / run), split)  # noqa: E731
    accuracy = {"good": 1.0, "close": 0.985, "poor": 0.7}
    numbers_of = lambda run: {"validation/accuracy": accuracy[run]}  # noqa: E731

    def claim(other):
        return dict(text="t", left=("good", "validation/accuracy"), op=">", right=(other, "validation/accuracy"))

    text = claims.table([claim("close"), claim("poor")], numbers_of, correct_of)
    close_line, poor_line = [line for line in text.splitlines() if line.startswith("| t |")]
    assert "difference +0.0150" in close_line and "within the noise" in close_line
    assert "difference +0.3000" in poor_line and "outside the noise" in poor_line
    assert "noise" not in claims.table([dict(claim("poor"), factor=2.0)], numbers_of, correct_of)


def test_the_scaling_table_and_figure_come_from_each_runs_predictions(tmp_path):
    _kept_runs(tmp_path, 10, {"k1": 4, "k2": 7, "big": 9})
    scaling = ml_collections.ConfigDict(
        dict(
            title="curve",
            xlabel="photos per class",
            split="validation",
            curves=(("head", (("k1", 1), ("k2", 2), ("missing", 4))),),
            marks=(("bigger head", "big", 2),),
            paper=(("paper", 153, 160),),
        )
    )
    found = suite._scaling(scaling, str(tmp_path))
    text, caption, figure = tables.scaling(found), found["figure"]["caption"], tmp_path / found["figure"]["path"]
    assert f"| head | 1 | {Estimate(0.4, *stats.wilson_interval(4, 10))} |" in text
    assert "| head | 4 | not run |" in text and "| bigger head | 2 | 0.9000" in text
    assert f"| paper | — | {Estimate(153 / 160, *stats.wilson_interval(153, 160))} |" in text
    assert os.path.getsize(figure) > 0 and "95 % Wilson interval" in caption


def test_the_scaling_table_extrapolates_a_curve_of_four_points_and_leaves_shorter_ones(tmp_path):
    _kept_runs(tmp_path, 20, {"p1": 8, "p2": 12, "p4": 15, "p8": 17})
    scaling = ml_collections.ConfigDict(
        dict(
            title="curve",
            xlabel="photos per class",
            split="validation",
            curves=(("head", (("p1", 1), ("p2", 2), ("p4", 4), ("p8", 8))), ("short", (("p1", 1), ("p2", 2)))),
            paper=(("paper", 153, 160),),
            extrapolate=dict(target_label="0.95", target=0.95, at=(("the whole set", 64.0),)),
        )
    )
    found = suite._scaling(scaling, str(tmp_path))
    (fit,) = found["fits"]  # the two-point curve is not fitted
    accuracies = np.array([8, 12, 15, 17]) / 20
    expected = scaling_fit.fit([1, 2, 4, 8], accuracies)
    assert fit["label"] == "head" and fit["ceiling"][0] == pytest.approx(expected.ceiling)
    assert fit["reach"][0] == pytest.approx(expected.reach(0.95))
    assert fit["at"][0]["accuracy"][0] == pytest.approx(expected(64.0))
    text = tables.scaling(found)
    assert "photos per class to reach 0.95" in text and "top-1 at the whole set" in text
    assert f"| head | {expected.ceiling:.3f} - " in text and "| short |" not in text.split("Extrapolated")[1]
