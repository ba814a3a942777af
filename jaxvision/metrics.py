"""Exact metrics kept as (total, count) pairs.

Every metric of a batch is a `Ratio`: a total and a count that add across batches, devices
and hosts (`lax.psum`, `Ratio.merge`) and are divided once at the end of a split, so averages
are exact whatever the batch size and however the last batch was padded. `valid` (1 for a real
example, 0 for padding) weights every example-level total and count.

Global Dice and IoU fit the same mould: Dice = 2TP / (2TP + FP + FN) is the ratio of two sums
over every pixel of every example, and so is IoU = TP / (TP + FP + FN).
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


@flax.struct.dataclass
class Ratio:
    """A running average as (total, count); `empty` is its value when nothing was counted."""

    total: Array
    count: Array
    empty: float = flax.struct.field(pytree_node=False, default=float("nan"))

    def merge(self, other: "Ratio") -> "Ratio":
        return Ratio(self.total + other.total, self.count + other.count, self.empty)

    def value(self) -> Array:
        count = jnp.asarray(self.count)
        return jnp.where(count > 0, self.total / jnp.where(count > 0, count, 1), self.empty)


def _weights(valid: Array | None, batch: int) -> Array:
    return jnp.ones((batch,), jnp.float32) if valid is None else jnp.asarray(valid, jnp.float32)


def _example_ratio(per_example: Array, valid: Array | None, empty: float = float("nan")) -> Ratio:
    w = _weights(valid, per_example.shape[0])
    w = w.reshape(w.shape + (1,) * (per_example.ndim - 1))
    return Ratio(jnp.sum(per_example * w, axis=0), jnp.sum(w), empty)


# --- single-label classification --------------------------------------------------------


def accuracy(logits: Array, targets: Array, valid: Array | None = None) -> Ratio:
    """Top-1 accuracy: argmax of the logits equals argmax of the one-hot targets."""
    correct = jnp.argmax(logits, -1) == jnp.argmax(targets, -1)
    return _example_ratio(correct.astype(jnp.float32), valid)


def binary_accuracy(probs: Array, targets: Array, threshold: float = 0.5, valid: Array | None = None) -> Ratio:
    """What Keras prints as "accuracy" beside a binary cross-entropy loss.

    Each of the K outputs is thresholded and compared with its target on its own; an example
    scores the fraction of its K outputs that agree. With one-hot targets over many classes this
    is dominated by the K - 1 easy zeros: a model that predicts nothing scores (K - 1) / K.
    """
    agree = ((probs >= threshold) == (targets >= 0.5)).astype(jnp.float32)
    return _example_ratio(jnp.mean(agree, axis=tuple(range(1, agree.ndim))), valid)


# --- multi-label classification ----------------------------------------------------------


def exact_match_accuracy(probs: Array, targets: Array, threshold: float = 0.5, valid: Array | None = None) -> Ratio:
    """Fraction of examples whose every label is predicted right (subset accuracy)."""
    agree = (probs >= threshold) == (targets >= 0.5)
    return _example_ratio(jnp.all(agree, axis=-1).astype(jnp.float32), valid)


def per_label_accuracy(probs: Array, targets: Array, threshold: float = 0.5, valid: Array | None = None) -> Ratio:
    """Accuracy of each label separately: a Ratio whose total has one entry per label."""
    agree = ((probs >= threshold) == (targets >= 0.5)).astype(jnp.float32)
    return _example_ratio(agree, valid)


def average_precision(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Average precision of each label (columns), on the host.

    AP = sum over distinct score thresholds of (recall step) x (precision at that threshold),
    so tied scores are treated as one threshold. A label with no positive example has no AP
    (NaN) and is left out of the mean by `mean_average_precision`.
    """
    scores = np.asarray(scores, np.float64)
    targets = np.asarray(targets) >= 0.5
    if scores.ndim == 1:
        scores, targets = scores[:, None], targets[:, None]
    result = np.full(scores.shape[1], np.nan)
    for k in range(scores.shape[1]):
        positives = targets[:, k].sum()
        if positives == 0:
            continue
        order = np.argsort(-scores[:, k], kind="stable")
        s, t = scores[order, k], targets[order, k]
        last_of_tie = np.r_[np.diff(s) != 0, True]
        tp = np.cumsum(t)[last_of_tie]
        seen = np.flatnonzero(last_of_tie) + 1
        precision, recall = tp / seen, tp / positives
        result[k] = np.sum(np.diff(np.r_[0.0, recall]) * precision)
    return result


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean of `average_precision` over the labels that have at least one positive example."""
    ap = average_precision(scores, targets)
    return float(np.nanmean(ap)) if np.any(~np.isnan(ap)) else float("nan")


# --- segmentation ------------------------------------------------------------------------


def mask_counts(pred_mask: Array, true_mask: Array) -> tuple[Array, Array, Array]:
    """Per-example true positives, false positives and false negatives of binary masks."""
    pred = jnp.asarray(pred_mask) >= 0.5
    true = jnp.asarray(true_mask) >= 0.5
    axes = tuple(range(1, pred.ndim))
    tp = jnp.sum(pred & true, axis=axes, dtype=jnp.float32)
    fp = jnp.sum(pred & ~true, axis=axes, dtype=jnp.float32)
    fn = jnp.sum(~pred & true, axis=axes, dtype=jnp.float32)
    return tp, fp, fn


def _overlap(numerator: Array, denominator: Array, valid: Array | None, per_image: bool) -> Ratio:
    w = _weights(valid, numerator.shape[0])
    if per_image:
        # An empty prediction of an empty mask is a perfect answer.
        score = jnp.where(denominator > 0, numerator / jnp.where(denominator > 0, denominator, 1), 1.0)
        return Ratio(jnp.sum(score * w), jnp.sum(w), 1.0)
    return Ratio(jnp.sum(numerator * w), jnp.sum(denominator * w), 1.0)


def dice_coefficient(pred_mask: Array, true_mask: Array, valid: Array | None = None, per_image: bool = False) -> Ratio:
    """Dice = 2TP / (2TP + FP + FN) over every pixel of every example (or the per-image mean)."""
    tp, fp, fn = mask_counts(pred_mask, true_mask)
    return _overlap(2 * tp, 2 * tp + fp + fn, valid, per_image)


def iou(pred_mask: Array, true_mask: Array, valid: Array | None = None, per_image: bool = False) -> Ratio:
    """IoU = TP / (TP + FP + FN) over every pixel of every example (or the per-image mean)."""
    tp, fp, fn = mask_counts(pred_mask, true_mask)
    return _overlap(tp, tp + fp + fn, valid, per_image)
