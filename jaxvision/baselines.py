"""Baselines that learn nothing from the pixels, to make the trained runs' numbers mean something.

Segmentation (`task='segmentation'`): every pixel foreground, and the mean training mask as a
fixed prior, thresholded at the value in 0.05, 0.10, ..., 0.95 that gives the best global Dice
on the training masks themselves (the masks as the evaluation reads them: resized,
un-augmented).

Multi-label classification (`task='multilabel'`): answering yes to every label, and answering
the label set most frequent among the training images for every image.

Each is fitted on the training split only and scored on `split` by the metric functions the
task uses, so they stand in the same table as the trained runs. A suite runs them as a run of
`kind='prior'` with the trained runs' `data` (jaxvision/research/runs.py).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxvision import metrics

THRESHOLDS = np.round(np.arange(0.05, 1.0, 0.05), 2)
NAMES = {
    "segmentation": {"all_foreground": "every pixel foreground", "prior": "mean training mask, thresholded"},
    "multilabel": {"all_yes": "yes to every label", "most_frequent": "the most frequent label set"},
}


def scores(prediction: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """The segmentation task's metrics of 0/1 predictions [N, H, W, 1] against masks."""
    p, m = jnp.asarray(prediction, jnp.float32), jnp.asarray(masks, jnp.float32)
    found = {
        "dice": metrics.dice_coefficient(p, m),
        "iou": metrics.iou(p, m),
        "dice_per_image": metrics.dice_coefficient(p, m, per_image=True),
        "iou_per_image": metrics.iou(p, m, per_image=True),
        "pixel_accuracy": metrics.binary_accuracy(p, m),
    }
    return {k: float(v.value()) for k, v in found.items()}


def label_scores(prediction: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The multi-label task's metrics of 0/1 answers [N, K] against labels."""
    p, y = jnp.asarray(prediction, jnp.float32), jnp.asarray(labels, jnp.float32)
    return {
        "exact_match": float(metrics.exact_match_accuracy(p, y).value()),
        "binary_accuracy": float(metrics.binary_accuracy(p, y).value()),
    }


def _segmentation(training: np.ndarray, held_out: np.ndarray) -> dict:
    prior = training.mean(axis=0, keepdims=True)
    dice = [scores(np.broadcast_to(prior >= t, training.shape), training)["dice"] for t in THRESHOLDS]
    threshold = float(THRESHOLDS[int(np.argmax(dice))])
    return {
        "all_foreground": scores(np.ones_like(held_out), held_out),
        "prior": scores(np.broadcast_to(prior >= threshold, held_out.shape), held_out),
        "fitted": f"the prior is the mean of the {len(training)} training masks, thresholded at {threshold:.2f} "
        f"(the best Dice on the training masks)",
    }


def _multilabel(training: np.ndarray, held_out: np.ndarray) -> dict:
    sets, counts = np.unique(training > 0.5, axis=0, return_counts=True)
    common = sets[int(np.argmax(counts))].astype(np.float32)
    return {
        "all_yes": label_scores(np.ones_like(held_out), held_out),
        "most_frequent": label_scores(np.broadcast_to(common, held_out.shape), held_out),
        "fitted": f"the most frequent label set of the {len(training)} training images is "
        f"{common.astype(int).tolist()} ({counts.max()} of them)",
    }


FITS = {"segmentation": _segmentation, "multilabel": _multilabel}  # the tasks NAMES has baselines for
