"""Tasks: what a model's output is compared with, by which loss, and which metrics are kept.

Each task is a pair of pure functions over one device's batch:
  loss(outputs, batch)    -> one loss value per example, `[B]`
  metrics(outputs, batch) -> dict name -> `jaxvision.metrics.Ratio` (total, count), with padded
                             examples (`batch['valid'] == 0`) left out
The step adds the mean loss of the batch as the metric 'loss'.

config.task / config.loss:
  classification  logits [B, K] vs one-hot 'label'
                  'softmax_cross_entropy', or 'binary_cross_entropy' = paper A's binary
                  cross-entropy applied to the softmax outputs (each of the K outputs scored as
                  a yes/no); metrics: accuracy (top-1) and binary_accuracy, which is what Keras
                  prints as "accuracy" beside a binary cross-entropy loss
  multilabel      logits [B, K] vs multi-hot 'label', 'binary_cross_entropy' on sigmoids;
                  metrics: exact_match, binary_accuracy (mean per-label accuracy, paper B's
                  Keras "accuracy"), label_accuracy (one value per label)
  reconstruction  the autoencoder's sigmoid output vs the input 'image';
                  'mean_squared_error' or 'mean_absolute_error'; metrics: both
  segmentation    logits [B, H, W, 1] vs 'mask'; 'binary_cross_entropy' (on sigmoids), 'dice'
                  (1 - soft Dice) or 'binary_cross_entropy+dice'; metrics: dice and iou over
                  every pixel of the split (global counts), their means over images
                  (dice_per_image, iou_per_image), pixel_accuracy
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxvision import losses, metrics
from jaxvision.metrics import Ratio

Batch = dict[str, jax.Array]


def _classification_losses() -> dict[str, Callable]:
    return {
        "softmax_cross_entropy": lambda z, b: losses.softmax_cross_entropy(z, b["label"]),
        "binary_cross_entropy": lambda z, b: losses.binary_cross_entropy(losses.softmax(z), b["label"]),
    }


def _classification_metrics(z: jax.Array, b: Batch) -> dict[str, Ratio]:
    return {
        "accuracy": metrics.accuracy(z, b["label"], valid=b["valid"]),
        "binary_accuracy": metrics.binary_accuracy(losses.softmax(z), b["label"], valid=b["valid"]),
    }


def _multilabel_metrics(z: jax.Array, b: Batch) -> dict[str, Ratio]:
    p = jax.nn.sigmoid(z)
    return {
        "exact_match": metrics.exact_match_accuracy(p, b["label"], valid=b["valid"]),
        "binary_accuracy": metrics.binary_accuracy(p, b["label"], valid=b["valid"]),
        "label_accuracy": metrics.per_label_accuracy(p, b["label"], valid=b["valid"]),
    }


def _reconstruction_metrics(x: jax.Array, b: Batch) -> dict[str, Ratio]:
    valid = b["valid"]
    return {
        "mean_squared_error": Ratio(jnp.sum(losses.mean_squared_error(x, b["image"]) * valid), jnp.sum(valid)),
        "mean_absolute_error": Ratio(jnp.sum(losses.mean_absolute_error(x, b["image"]) * valid), jnp.sum(valid)),
    }


def _segmentation_metrics(z: jax.Array, b: Batch) -> dict[str, Ratio]:
    p = jax.nn.sigmoid(z)
    pred = (p >= 0.5).astype(jnp.float32)
    return {
        "dice": metrics.dice_coefficient(pred, b["mask"], valid=b["valid"]),
        "iou": metrics.iou(pred, b["mask"], valid=b["valid"]),
        "dice_per_image": metrics.dice_coefficient(pred, b["mask"], valid=b["valid"], per_image=True),
        "iou_per_image": metrics.iou(pred, b["mask"], valid=b["valid"], per_image=True),
        "pixel_accuracy": metrics.binary_accuracy(p, b["mask"], valid=b["valid"]),
    }


def _bce_logits(z: jax.Array, b: Batch) -> jax.Array:
    return losses.sigmoid_binary_cross_entropy(z, b["mask"])


def _dice(z: jax.Array, b: Batch) -> jax.Array:
    return losses.dice_loss(z, b["mask"])


def _one_hot_data(info) -> str | None:
    return "multi-hot labels, which a softmax over the classes cannot fit" if info.multi_label else None


def _multi_hot_data(info) -> str | None:
    return None if info.multi_label else "one-hot labels (one class per image)"


def _mask_data(info) -> str | None:
    return None if info.has_mask else "no masks"


@dataclasses.dataclass(frozen=True)
class _Kind:
    """What every run of one task shares: its target's batch key, its losses, its metrics, what
    its model's outputs mean to a reader (`output`: probabilities, or the image itself) and what
    data it cannot learn from (`data_problem(info)`: a phrase, or None when the data fits)."""

    target: str
    losses: dict[str, Callable[[jax.Array, Batch], jax.Array]]
    metrics: Callable[[jax.Array, Batch], dict[str, Ratio]]
    output: Callable[[jax.Array], jax.Array]
    data_problem: Callable[[object], str | None] = lambda info: None
    min_classes: int = 1  # a softmax over one class is 1 whatever the image
    figure: str = ""  # what a report draws of its outputs: 'reconstruction', 'segmentation' or nothing
    keeps_predictions: bool = False  # its held-out class probabilities are kept (intervals, confusions)


_TASKS: dict[str, _Kind] = {
    "classification": _Kind(
        target="label",
        losses=_classification_losses(),
        metrics=_classification_metrics,
        output=losses.softmax,
        data_problem=_one_hot_data,
        min_classes=2,
        keeps_predictions=True,
    ),
    "multilabel": _Kind(
        target="label",
        losses={"binary_cross_entropy": lambda z, b: losses.sigmoid_binary_cross_entropy(z, b["label"])},
        metrics=_multilabel_metrics,
        output=jax.nn.sigmoid,
        data_problem=_multi_hot_data,
    ),
    "reconstruction": _Kind(
        target="image",
        losses={
            "mean_squared_error": lambda x, b: losses.mean_squared_error(x, b["image"]),
            "mean_absolute_error": lambda x, b: losses.mean_absolute_error(x, b["image"]),
        },
        metrics=_reconstruction_metrics,
        output=lambda x: x,
        figure="reconstruction",
    ),
    "segmentation": _Kind(
        target="mask",
        losses={
            "binary_cross_entropy": _bce_logits,
            "dice": _dice,
            "binary_cross_entropy+dice": lambda z, b: _bce_logits(z, b) + _dice(z, b),
        },
        metrics=_segmentation_metrics,
        output=jax.nn.sigmoid,
        data_problem=_mask_data,
        figure="segmentation",
    ),
}

LOSSES = {task: tuple(kind.losses) for task, kind in _TASKS.items()}


@dataclasses.dataclass(frozen=True)
class Task:
    """A task's name, the batch key its target lives under, its loss, its metrics, the meaning of
    its model's outputs (`output`), the data it cannot learn from (`data_problem`) and what its
    reports show (`figure`, `keeps_predictions`; see _Kind). A task whose target is 'label' has
    class probabilities to list (`--mode predict`)."""

    name: str
    loss_name: str
    target: str
    loss: Callable[[jax.Array, Batch], jax.Array]
    metrics: Callable[[jax.Array, Batch], dict[str, Ratio]]
    output: Callable[[jax.Array], jax.Array]
    data_problem: Callable[[object], str | None]
    min_classes: int
    figure: str
    keeps_predictions: bool


def make_task(task: str, loss: str) -> Task:
    """The task named by `config.task` with the loss named by `config.loss`."""
    if task not in _TASKS:
        raise ValueError(f"Unknown config.task {task!r}: use one of {', '.join(_TASKS)}.")
    kind = _TASKS[task]
    if loss not in kind.losses:
        raise ValueError(
            f"config.loss {loss!r} does not fit config.task {task!r}: use one of {', '.join(kind.losses)}."
        )
    return Task(
        name=task,
        loss_name=loss,
        target=kind.target,
        loss=kind.losses[loss],
        metrics=kind.metrics,
        output=kind.output,
        data_problem=kind.data_problem,
        min_classes=kind.min_classes,
        figure=kind.figure,
        keeps_predictions=kind.keeps_predictions,
    )
