"""Which feature of a prepared dataset holds what, per dataset, for the grain reader: the
counterpart of sources.py's `parse` functions, which are TensorFlow graph code."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import ml_collections
import numpy as np


@dataclasses.dataclass(frozen=True)
class Fields:
    """How one dataset's records become examples: which features hold what."""

    image: str
    name: str
    label: Callable[[dict], np.ndarray]  # record -> float32 one-hot or multi-hot
    class_names: tuple[str, ...]
    multi_label: bool
    mask: str | None = None
    keep: Callable[[np.ndarray], bool] | None = None  # on the label: use the example?


def _hot(ids, num_classes: int) -> np.ndarray:
    """[num_classes] float32 with 1 at every id in [0, num_classes) (others are ignored)."""
    out = np.zeros(num_classes, np.float32)
    ids = np.asarray(ids, np.int64).reshape(-1)
    out[ids[(ids >= 0) & (ids < num_classes)]] = 1.0
    return out


def _names(builder, feature: str) -> tuple[str, ...]:
    found = builder.info.features[feature]
    return tuple(getattr(found, "feature", found).names)


def fields(data: ml_collections.ConfigDict, builder) -> Fields:
    """The Fields of `data.name`, read from the prepared dataset's own feature description."""
    name = data.name
    if name == "shapes":
        key = "label" if data.shapes.label == "dominant" else "labels"
        names = _names(builder, key)
        return Fields("image", "id", lambda r: _hot(r[key], len(names)), names, key == "labels", mask="mask")
    if name in ("oxford_flowers102", "folder"):
        names, key = _names(builder, "label"), "file_name"
        return Fields("image", key, lambda r: _hot(r["label"], len(names)), names, False)
    if name == "voc_segmentation":
        names = _names(builder, "labels")
        return Fields("image", "image/filename", lambda r: _hot(r["labels"], len(names)), names, True, mask="mask")
    if name == "voc_multilabel":
        key = "labels" if data.voc.include_difficult else "labels_no_difficult"
        every, classes = _names(builder, key), tuple(data.voc.classes)
        subset = np.array([classes.index(c) if c in classes else -1 for c in every])
        return Fields(
            "image",
            "image/filename",
            lambda r: _hot(subset[np.asarray(r[key], np.int64)], len(classes)),
            classes,
            True,
            keep=lambda label: label.max() > 0,
        )
    return Fields("image", "file_name", lambda r: np.ones(1, np.float32), ("foreground",), True, mask="mask")
