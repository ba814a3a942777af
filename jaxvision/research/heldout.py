"""A classifier's held-out predictions, and what its report says of them.

For each split whose top-1 accuracy a classification run's table shows, the report keeps the
run's predictions (`predictions-SPLIT.npz`: labels and softmax probabilities, in the split's
fixed order, and the class names) and derives from them, never from typed numbers:

* the accuracy's 95 % Wilson interval (`jaxvision.stats`), shown beside it in every table;
* `per_class-SPLIT.png`: each class's held-out accuracy, sorted, worst classes named;
* the ten class pairs most often mistaken for each other, by name, in the run's results.json
  (rendered in its results.md);
* per-photo correctness, with which the suite says whether two runs' accuracies differ by
  more than the noise of the photos (`claims`).
"""

from __future__ import annotations

import os

import numpy as np

from jaxvision import stats
from jaxvision.research import figures
from jaxvision.research.results import Estimate, columns
from jaxvision.train.tasks import make_task

CONFUSED_PAIRS = 10


def path(workdir: str, split: str) -> str:
    return os.path.join(workdir, f"predictions-{split}.npz")


def accuracy_splits(config) -> list[str]:
    """The splits whose top-1 accuracy the run's table shows (classification runs only)."""
    if config.get("kind") or not make_task(config.task, config.loss).keeps_predictions:
        return []
    found = [c.metric.split("/", 1)[0] for c in columns(config.report) if c.metric.endswith("/accuracy")]
    return [s for s in dict.fromkeys(found) if s != "train"]


def save(workdir: str, split: str, labels: np.ndarray, probabilities: np.ndarray, names) -> str:
    labels = np.asarray(labels)
    labels = labels.argmax(-1) if labels.ndim > 1 else labels
    out = path(workdir, split)
    np.savez(
        out,
        label=labels.astype(np.int64),
        probabilities=np.asarray(probabilities, np.float32),
        class_names=np.asarray(names, dtype=str),
    )
    return out


def load(workdir: str, split: str) -> dict[str, np.ndarray] | None:
    found = path(workdir, split)
    if not os.path.isfile(found):
        return None
    with np.load(found) as f:
        return {k: f[k] for k in f.files}


def correct(workdir: str, split: str) -> np.ndarray | None:
    """1.0 where the run's top class is the label, per photo of `split` (None: not kept)."""
    found = load(workdir, split)
    return None if found is None else (found["probabilities"].argmax(-1) == found["label"]).astype(np.float64)


def interval(workdir: str, split: str) -> Estimate | None:
    hits = correct(workdir, split)
    if hits is None or not len(hits):
        return None
    k, n = int(hits.sum()), len(hits)
    return Estimate(k / n, *stats.wilson_interval(k, n))


def summary(workdir: str, split: str, title: str = "") -> dict | None:
    """The most confused pairs of one split, its perfect and worst classes (as data, rendered by
    `tables.confusions`), with the path of its per-class figure under 'figure'."""
    found = load(workdir, split)
    if found is None:
        return None
    names = [str(n) for n in found["class_names"]]
    confusion = stats.confusion_matrix(found["label"], found["probabilities"].argmax(-1), len(names))
    per_class = stats.per_class_accuracy(confusion)
    figure = figures.per_class_accuracy(
        per_class, names, os.path.join(workdir, f"per_class-{split}.png"), f"{split}: {len(found['label'])} photos"
    )
    worst = np.argsort(np.nan_to_num(per_class, nan=2.0))[:5]
    return {
        "title": title or os.path.basename(workdir),
        "split": split,
        "pairs": [[a, b, int(ab), int(ba)] for a, b, ab, ba in stats.most_confused(confusion, names, CONFUSED_PAIRS)],
        "perfect": int(np.sum(per_class == 1)),
        "classes": int(np.sum(~np.isnan(per_class))),
        "worst": [[names[i], float(per_class[i])] for i in worst],
        "figure": str(figure),
    }
