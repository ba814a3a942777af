"""Exact metrics: hand-worked values, additivity over batches and devices, and the Keras pitfall."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import metrics


def test_accuracy_counts_and_padding():
    logits = jnp.asarray([[2.0, 1.0], [0.0, 3.0], [5.0, 0.0], [9.0, 0.0]])
    targets = jnp.asarray([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    r = metrics.accuracy(logits, targets)
    assert (float(r.total), float(r.count)) == (2.0, 4.0)
    # The last example is padding: it must count neither as right nor as seen.
    r = metrics.accuracy(logits, targets, valid=jnp.asarray([1.0, 1.0, 1.0, 0.0]))
    assert float(r.value()) == pytest.approx(2 / 3)


def test_binary_accuracy_pitfall_with_102_classes():
    # A model that always answers class 0, never the true class, with a nearly flat softmax:
    # top-1 accuracy is 0, yet Keras' binary accuracy reads ~0.99 (every "no" is right).
    n, k = 64, 102
    targets = jax.nn.one_hot(1 + jnp.arange(n) % (k - 1), k)
    logits = jnp.zeros((n, k)).at[:, 0].set(1.0)
    probs = jax.nn.softmax(logits)
    binary = float(metrics.binary_accuracy(probs, targets).value())
    top1 = float(metrics.accuracy(logits, targets).value())
    assert binary == pytest.approx(101 / 102)
    assert binary > 0.99 and top1 == 0.0


def test_multilabel_exact_match_and_per_label():
    probs = jnp.asarray([[0.9, 0.1, 0.6], [0.2, 0.8, 0.4], [0.7, 0.7, 0.7]])
    targets = jnp.asarray([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    assert float(metrics.exact_match_accuracy(probs, targets).value()) == pytest.approx(1 / 3)
    np.testing.assert_allclose(metrics.per_label_accuracy(probs, targets).value(), [1.0, 2 / 3, 2 / 3])
    assert float(metrics.binary_accuracy(probs, targets).value()) == pytest.approx(7 / 9)


def brute_force_ap(scores, targets):
    """AP from its definition: mean over positives of the precision at that positive's threshold."""
    positives = [i for i in range(len(scores)) if targets[i]]
    total = 0.0
    for i in positives:
        above = [j for j in range(len(scores)) if scores[j] >= scores[i]]
        total += sum(targets[j] for j in above) / len(above)
    return total / len(positives)


def test_average_precision_against_definition_including_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.integers(0, 5, size=12) / 4.0  # many ties
        targets = rng.random(12) < 0.4
        if not targets.any():
            continue
        assert metrics.average_precision(scores, targets)[0] == pytest.approx(brute_force_ap(scores, targets))
    # Perfect ranking scores 1; a label without positives is left out of the mean.
    scores = np.asarray([[0.9, 0.3], [0.8, 0.1], [0.1, 0.2]])
    targets = np.asarray([[1, 0], [1, 0], [0, 0]])
    ap = metrics.average_precision(scores, targets)
    assert ap[0] == 1.0 and np.isnan(ap[1])
    assert metrics.mean_average_precision(scores, targets) == 1.0


def test_dice_and_iou_on_hand_worked_masks():
    pred = np.zeros((1, 4, 4, 1))
    true = np.zeros((1, 4, 4, 1))
    pred[0, :2, :2] = 1  # 4 pixels predicted
    true[0, :2, :3] = 1  # 6 pixels true, 4 of them predicted
    # TP = 4, FP = 0, FN = 2: Dice = 8 / 10, IoU = 4 / 6.
    assert float(metrics.dice_coefficient(pred, true).value()) == pytest.approx(0.8)
    assert float(metrics.iou(pred, true).value()) == pytest.approx(4 / 6)
    # Empty prediction of an empty target scores 1, globally and per image.
    empty = np.zeros((2, 3, 3, 1))
    for per_image in (False, True):
        assert float(metrics.dice_coefficient(empty, empty, per_image=per_image).value()) == 1.0
        assert float(metrics.iou(empty, empty, per_image=per_image).value()) == 1.0


def test_global_versus_per_image_mean():
    pred = np.zeros((2, 2, 2, 1))
    true = np.zeros((2, 2, 2, 1))
    true[0] = 1
    pred[0] = 1  # image 0: perfect (Dice 1); image 1: empty/empty (Dice 1)
    pred[1, 0, 0] = 1  # ... now image 1 has one false positive: Dice 0
    assert float(metrics.dice_coefficient(pred, true, per_image=True).value()) == pytest.approx(0.5)
    assert float(metrics.dice_coefficient(pred, true).value()) == pytest.approx(8 / 9)


def test_iou_equals_dice_over_two_minus_dice_on_global_counts():
    rng = np.random.default_rng(1)
    pred = rng.random((5, 8, 8, 1)) < 0.4
    true = rng.random((5, 8, 8, 1)) < 0.3
    d = float(metrics.dice_coefficient(pred, true).value())
    assert float(metrics.iou(pred, true).value()) == pytest.approx(d / (2 - d), rel=1e-6)


def test_summing_batch_counts_equals_one_pass():
    rng = np.random.default_rng(2)
    pred = rng.random((10, 6, 6, 1)) < 0.5
    true = rng.random((10, 6, 6, 1)) < 0.3
    for fn, per_image in itertools.product((metrics.dice_coefficient, metrics.iou), (False, True)):
        whole = fn(pred, true, per_image=per_image)
        parts = [fn(pred[i : i + 3], true[i : i + 3], per_image=per_image) for i in range(0, 10, 3)]
        merged = parts[0]
        for p in parts[1:]:
            merged = merged.merge(p)
        assert float(merged.value()) == pytest.approx(float(whole.value()), rel=1e-6)
        assert float(merged.count) == pytest.approx(float(whole.count))


def test_ratios_psum_across_devices_under_pmap():
    n = jax.local_device_count()
    assert n == 4, "tests run with XLA_FLAGS=--xla_force_host_platform_device_count=4"
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(n, 5, 7)).astype(np.float32)
    targets = np.eye(7, dtype=np.float32)[rng.integers(0, 7, size=(n, 5))]
    valid = np.ones((n, 5), np.float32)
    valid[-1, 3:] = 0  # the padded tail of an eval split

    def step(z, t, v):
        return jax.lax.psum(metrics.accuracy(z, t, v), "batch")

    r = jax.pmap(step, axis_name="batch")(logits, targets, valid)
    keep = valid.reshape(-1) > 0
    expected = np.mean((logits.reshape(-1, 7).argmax(-1) == targets.reshape(-1, 7).argmax(-1))[keep])
    assert float(r.value()[0]) == pytest.approx(expected)
    assert float(r.count[0]) == keep.sum()
