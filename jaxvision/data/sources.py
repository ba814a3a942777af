"""From `config.data` to a `Source`: the tfds builder of a dataset and how to read its examples."""

from __future__ import annotations

import dataclasses
import fcntl
import os
from collections.abc import Callable

import ml_collections
import tensorflow as tf
import tensorflow_datasets as tfds

from jaxvision.data import folder, mask_folder, shapes, voc
from jaxvision.data.errors import DataError

Example = dict[str, tf.Tensor]


@dataclasses.dataclass(frozen=True)
class Source:
    """A tfds builder and the in-graph functions that turn its examples into targets.

    `parse` maps a tfds example (only the `features` it reads, images still encoded) to
    'image' (bytes), 'label' (float32 one-hot or multi-hot), 'mask' (PNG bytes, when has_mask)
    and 'name' (the example's file or id, for error messages); `keep` (optional) says which
    parsed examples to use.
    """

    name: str
    builder: tfds.core.DatasetBuilder
    splits: tuple[str, ...]
    class_names: tuple[str, ...]
    multi_label: bool
    has_mask: bool
    features: tuple[str, ...]
    parse: Callable[[Example], Example]
    keep: Callable[[Example], tf.Tensor] | None = None
    download_config: tfds.download.DownloadConfig | None = None


def one_hot(label: tf.Tensor, num_classes: int) -> tf.Tensor:
    return tf.one_hot(label, num_classes, dtype=tf.float32)


def multi_hot(labels: tf.Tensor, num_classes: int) -> tf.Tensor:
    """[num_classes] with 1 at every listed class; ids outside [0, num_classes) are ignored."""
    return tf.minimum(tf.reduce_sum(tf.one_hot(labels, num_classes, dtype=tf.float32), axis=0), 1.0)


def _shapes(data: ml_collections.ConfigDict, data_dir: str | None) -> Source:
    c = data.shapes
    config = shapes.ShapesConfig.make(
        c.image_size, c.num_train, c.num_validation, c.num_test, c.objects, c.clutter, c.presence, c.background
    )
    k = len(shapes.CLASS_NAMES)
    dominant = c.label == "dominant"

    def parse(ex):
        label = one_hot(ex["label"], k) if dominant else multi_hot(ex["labels"], k)
        return {"image": ex["image"], "mask": ex["mask"], "label": label, "name": ex["id"]}

    return Source(
        "shapes",
        shapes.JaxvisionShapes(config=config, data_dir=data_dir),
        shapes.SPLITS,
        shapes.CLASS_NAMES,
        multi_label=not dominant,
        has_mask=True,
        features=("image", "mask", "label" if dominant else "labels", "id"),
        parse=parse,
    )


def _flowers(data: ml_collections.ConfigDict, data_dir: str | None) -> Source:
    builder = tfds.builder("oxford_flowers102", data_dir=data_dir)
    names = tuple(builder.info.features["label"].names)

    def parse(ex):
        return {"image": ex["image"], "label": one_hot(ex["label"], len(names)), "name": ex["file_name"]}

    return Source(
        "oxford_flowers102",
        builder,
        ("train", "validation", "test"),
        names,
        multi_label=False,
        has_mask=False,
        features=("image", "label", "file_name"),
        parse=parse,
    )


def _voc_download_config(data: ml_collections.ConfigDict) -> tfds.download.DownloadConfig:
    manual_dir = data.voc.manual_dir
    if manual_dir and not os.path.isdir(manual_dir):
        raise FileNotFoundError(
            f"config.data.voc.manual_dir {manual_dir} is not a folder: point it at a "
            "folder holding VOCdevkit/VOC<year> or the official VOCtrainval tar, or "
            "leave it empty."
        )
    return tfds.download.DownloadConfig(manual_dir=manual_dir or None)


def _voc_year(data: ml_collections.ConfigDict) -> int:
    year = int(data.voc.year)
    if year not in voc.TARS:
        raise ValueError(f"config.data.voc.year is {year}: use one of {', '.join(map(str, voc.TARS))}.")
    return year


def _voc_multilabel(data: ml_collections.ConfigDict, data_dir: str | None) -> Source:
    year = _voc_year(data)
    classes = tuple(data.voc.classes)
    unknown = [c for c in classes if c not in voc.VOC_CLASSES]
    if unknown or not classes:
        raise ValueError(
            f"config.data.voc.classes {classes!r} must be a non-empty subset of the VOC classes: "
            f"{', '.join(voc.VOC_CLASSES)}."
        )
    if data.voc.builder == "tfds":
        if year not in (2007, 2012):
            raise ValueError(
                f"tfds' voc has the years 2007 and 2012 only, not {year}: set "
                "config.data.voc.builder='jaxvision' for other years."
            )
        builder, download_config = tfds.builder(f"voc/{year}", data_dir=data_dir), None
        splits = ("train", "validation", "test")
    else:
        builder = voc.JaxvisionVoc(
            config=voc.builder_config("classification", year, data.voc.manual_dir),
            data_dir=data_dir,
            skip_bad_examples=data.skip_bad_examples,
        )
        splits, download_config = ("train", "validation"), _voc_download_config(data)
    # VOC class id -> position in the subset, -1 (ignored by multi_hot) for the other classes.
    subset = tf.constant([classes.index(c) if c in classes else -1 for c in voc.VOC_CLASSES], tf.int64)
    labels_key = "labels" if data.voc.include_difficult else "labels_no_difficult"

    def parse(ex):
        label = multi_hot(tf.gather(subset, ex[labels_key]), len(classes))
        return {"image": ex["image"], "label": label, "name": ex["image/filename"]}

    return Source(
        "voc_multilabel",
        builder,
        splits,
        classes,
        multi_label=True,
        has_mask=False,
        features=("image", labels_key, "image/filename"),
        parse=parse,
        keep=lambda ex: tf.reduce_max(ex["label"]) > 0,
        download_config=download_config,
    )


def _voc_segmentation(data: ml_collections.ConfigDict, data_dir: str | None) -> Source:
    builder = voc.JaxvisionVoc(
        config=voc.builder_config("segmentation", _voc_year(data), data.voc.manual_dir),
        data_dir=data_dir,
        skip_bad_examples=data.skip_bad_examples,
    )
    k = len(voc.VOC_CLASSES)

    def parse(ex):
        return {
            "image": ex["image"],
            "mask": ex["mask"],
            "label": multi_hot(ex["labels"], k),
            "name": ex["image/filename"],
        }

    return Source(
        "voc_segmentation",
        builder,
        ("train", "validation"),
        voc.VOC_CLASSES,
        multi_label=True,
        has_mask=True,
        features=("image", "mask", "labels", "image/filename"),
        parse=parse,
        download_config=_voc_download_config(data),
    )


def _folder(data: ml_collections.ConfigDict, data_dir: str | None) -> Source:
    if not data.folder.root:
        raise ValueError("config.data.folder.root is empty: point it at a folder of class sub-folders.")
    config = folder.scan(data.folder.root)
    builder = folder.JaxvisionImageFolder(config=config, data_dir=data_dir, skip_bad_examples=data.skip_bad_examples)
    k = len(config.class_names)

    def parse(ex):
        return {"image": ex["image"], "label": one_hot(ex["label"], k), "name": ex["file_name"]}

    return Source(
        "folder",
        builder,
        tuple(config.files),
        config.class_names,
        multi_label=False,
        has_mask=False,
        features=("image", "label", "file_name"),
        parse=parse,
    )


def _mask_folder(data: ml_collections.ConfigDict, data_dir: str | None) -> Source:
    m = data.masks
    if not m.root:
        raise ValueError("config.data.masks.root is empty: point it at a folder with images/ and masks/.")
    if m.foreground == "values" and not m.foreground_values:
        raise ValueError(
            "config.data.masks.foreground is 'values', but config.data.masks.foreground_values is "
            "empty: list the mask values that are foreground, e.g. (15,)."
        )
    rule = tuple(m.foreground_values) if m.foreground == "values" else m.foreground
    config = mask_folder.scan(m.root, rule, tuple(m.split), m.split_seed)
    builder = mask_folder.JaxvisionMaskFolder(
        config=config, data_dir=data_dir, skip_bad_examples=data.skip_bad_examples
    )

    def parse(ex):
        return {"image": ex["image"], "mask": ex["mask"], "label": tf.ones([1], tf.float32), "name": ex["file_name"]}

    return Source(
        "mask_folder",
        builder,
        tuple(config.pairs),
        ("foreground",),
        multi_label=True,
        has_mask=True,
        features=("image", "mask", "file_name"),
        parse=parse,
    )


_SOURCES = {
    "shapes": _shapes,
    "oxford_flowers102": _flowers,
    "voc_multilabel": _voc_multilabel,
    "voc_segmentation": _voc_segmentation,
    "folder": _folder,
    "mask_folder": _mask_folder,
}


def make_source(data: ml_collections.ConfigDict) -> Source:
    """The source named by `data.name` (a resolved data config)."""
    return _SOURCES[data.name](data, data.data_dir or None)


def prepared_source(data: ml_collections.ConfigDict, file_format: str | None = None) -> Source:
    """`make_source(data)`, its data prepared once however many processes ask at the same time
    (the runs of a suite side by side): one prepares, the others wait, then read."""
    source = make_source(data)
    data_dir = str(source.builder.data_dir)
    if "://" in data_dir or os.path.isdir(data_dir):  # a bucket (no local lock), or prepared already
        prepare(source, file_format)
        return source
    parent = os.path.dirname(data_dir.rstrip("/"))
    os.makedirs(parent, exist_ok=True)
    with open(os.path.join(parent, ".prepare.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also when the process dies
        if os.path.isdir(data_dir):  # another process prepared it meanwhile: a builder made before would not read it
            source = make_source(data)
        prepare(source, file_format)
    return source


def prepare(source: Source, file_format: str | None = None) -> None:
    """Downloads and prepares the source's data once into its tfds data dir (in tfds' default
    format, or `file_format`: 'array_record' for the grain reader)."""
    try:
        source.builder.download_and_prepare(download_config=source.download_config, file_format=file_format)
    except (DataError, FileNotFoundError):
        raise
    except Exception as e:  # a failed download or extraction deep inside tfds
        reason = (str(e).strip().splitlines() or [""])[0]
        raise DataError(
            f"Could not prepare {source.name} in {source.builder.data_dir} ({type(e).__name__}: {reason}). "
            "Without internet access, prepare it elsewhere and copy the tfds data dir here "
            "(config.data.data_dir), or, for VOC, set config.data.voc.manual_dir."
        ) from None
