"""`config.data`: every field the data package reads, with its default, and their checks.

name                 one of DATASETS
data_dir             where tfds keeps prepared datasets ('' = $TFDS_DATA_DIR or
                     ~/tensorflow_datasets)
reader               'tf' (tf.data) or 'grain' (no TensorFlow at read time; reads an
                     array_record copy, see jaxvision.data.grain_pipeline)
prepared             with reader 'grain': the folder of a dataset prepared elsewhere in
                     array_record format ('' = prepare it here, which needs TensorFlow)
read_threads         with reader 'grain': threads that read and preprocess examples
                     (0 = one per core)
cache_decoded        with reader 'grain': keep every example decoded (and resized, where
                     the crop is not random) in memory after its first read; costs
                     examples x pixels x channels x 4 bytes (uint8 before a random crop)
train_split          tfds split string of the training data (slices work: 'train[:80%]')
eval_splits          split strings to evaluate on; () = every split of the dataset but the
                     training one
image_size           side of the square output images
grayscale            convert to one channel (paper B's segmentation)
value_range          (low, high) of the pixel values: (0, 1) or (-1, 1) for Inception
train_crop           'none' (resize the whole image), 'central' (the centred square of
                     side central_crop_fraction * shorter side) or 'inception' (a random
                     crop of inception_crop_area of the area and inception_crop_aspect
                     aspect ratio), before resizing; masks are cropped alike
eval_crop            'none' or 'central'
random_flip          random left-right flips of training images (and masks)
shuffle_buffer       examples in the shuffle buffer; at least a split's size gives a full
                     permutation of it every epoch
prefetch_to_device   batches placed on the devices ahead of use (0 = yield numpy arrays)
skip_bad_examples    when preparing our builders (VOC, folder), skip unreadable images,
                     masks of the wrong size and missing files (counted in the log)
                     instead of stopping with an error that names the file; the prepared
                     data keeps the choice (delete it to prepare again)
shapes               the embedded dataset: generated image_size and split sizes, which
                     label 'label' holds: 'multi_hot' (classes present) or 'dominant'
                     (one-hot of the class with the most pixels), objects (range of an
                     object's half-size as a fraction of the side), clutter (0-1: how
                     many clutter strokes and blobs, of the default's), presence (> 0:
                     each class drawn independently with this probability) and background
                     (0-1: the background's contrast, of the default's)
voc                  year (2007-2012), builder for voc_multilabel ('jaxvision': ours, any
                     year; 'tfds': tfds' voc, 2007 or 2012), classes (the multi-label
                     subset; images with none of them are left out), include_difficult
                     (count objects marked difficult), manual_dir (a folder holding
                     VOCdevkit/VOC<year> or the official tar; '' = download)
folder               root: a folder of class sub-folders (see jaxvision.data.folder)
masks                the 'mask_folder' dataset: root (images/ + masks/, or per split),
                     foreground ('binary', 'nonzero' or 'values' with foreground_values),
                     split (fractions of the one-pool layout) and split_seed (see
                     jaxvision.data.mask_folder)
"""

from __future__ import annotations

import ml_collections

DATASETS = ("shapes", "oxford_flowers102", "voc_multilabel", "voc_segmentation", "folder", "mask_folder")
TRAIN_CROPS = ("none", "central", "inception")
EVAL_CROPS = ("none", "central")
READERS = ("tf", "grain")


def default_data_config() -> ml_collections.ConfigDict:
    """The data fields with their defaults (the embedded 'shapes' dataset at 128x128 RGB): see
    the module's docstring."""
    return ml_collections.ConfigDict(
        dict(
            name="shapes",
            data_dir="",
            reader="tf",
            prepared="",
            read_threads=0,
            cache_decoded=False,
            train_split="train",
            eval_splits=(),
            image_size=128,
            grayscale=False,
            value_range=(0.0, 1.0),
            train_crop="none",
            eval_crop="none",
            central_crop_fraction=0.875,
            inception_crop_area=(0.08, 1.0),
            inception_crop_aspect=(3.0 / 4.0, 4.0 / 3.0),
            random_flip=True,
            shuffle_buffer=4096,
            prefetch_to_device=2,
            skip_bad_examples=False,
            shapes=dict(
                image_size=128,
                num_train=2000,
                num_validation=500,
                num_test=500,
                label="multi_hot",
                objects=(0.06, 0.25),
                clutter=1.0,
                presence=0.0,
                background=1.0,
            ),
            voc=dict(
                year=2009,
                builder="jaxvision",
                classes=("cat", "motorbike", "bottle"),
                include_difficult=True,
                manual_dir="",
            ),
            folder=dict(root=""),
            masks=dict(root="", foreground="binary", foreground_values=(), split=(0.8, 0.2), split_seed=0),
        )
    )


def _merge(into: ml_collections.ConfigDict, given, prefix: str) -> None:
    for key, value in given.items():
        if key not in into:
            known = ", ".join(sorted(into.keys()))
            raise ValueError(f"Unknown key {prefix}.{key}: the known keys are {known}.")
        if isinstance(into[key], ml_collections.ConfigDict):
            _merge(into[key], value, f"{prefix}.{key}")
            continue
        if isinstance(into[key], tuple) and isinstance(value, (list, tuple)):
            value = tuple(value)
        elif isinstance(into[key], tuple) and isinstance(value, str) and key in ("eval_splits", "classes"):
            value = tuple(s for s in value.split(",") if s)  # --config.data.eval_splits=test,validation
        try:
            into[key] = value
        except TypeError:
            raise ValueError(
                f"{prefix}.{key} is {value!r}, but it must be a {type(into[key]).__name__} "
                f"like its default {into[key]!r}."
            ) from None


class ResolvedDataConfig(ml_collections.ConfigDict):
    """`config.data` as the readers use it: every default filled in, every value checked."""


def filled_data_config(given: ml_collections.ConfigDict | dict | None) -> ml_collections.ConfigDict:
    """The defaults overridden by `given`, not yet checked; unknown keys are errors."""
    data = default_data_config()
    _merge(data, given or {}, "config.data")
    return data


def resolve_data_config(given: ml_collections.ConfigDict | dict | None) -> ResolvedDataConfig:
    """`given` filled in and checked, once: a ResolvedDataConfig comes back as it is."""
    if isinstance(given, ResolvedDataConfig):
        return given
    return check_data_config(filled_data_config(given))


def check_data_config(data: ml_collections.ConfigDict) -> ResolvedDataConfig:
    """The filled-in `data` in its resolved form; an impossible value is an error."""
    checks = [
        (data.name in DATASETS, f"config.data.name is {data.name!r}: use one of {', '.join(DATASETS)}."),
        (
            data.train_crop in TRAIN_CROPS,
            f"config.data.train_crop is {data.train_crop!r}: use one of {', '.join(TRAIN_CROPS)}.",
        ),
        (
            data.eval_crop in EVAL_CROPS,
            f"config.data.eval_crop is {data.eval_crop!r}: use one of {', '.join(EVAL_CROPS)}.",
        ),
        (
            len(data.value_range) == 2 and data.value_range[0] < data.value_range[1],
            f"config.data.value_range is {data.value_range!r}: give (low, high) with low < high, "
            "e.g. (0, 1) or (-1, 1).",
        ),
        (0 < data.central_crop_fraction <= 1, "config.data.central_crop_fraction must lie in (0, 1]."),
        (
            0 < data.inception_crop_area[0] <= data.inception_crop_area[1] <= 1,
            "config.data.inception_crop_area must be (low, high) with 0 < low <= high <= 1.",
        ),
        (
            0 < data.inception_crop_aspect[0] <= data.inception_crop_aspect[1],
            "config.data.inception_crop_aspect must be (low, high) with 0 < low <= high.",
        ),
        (data.reader in READERS, f"config.data.reader is {data.reader!r}: use one of {', '.join(READERS)}."),
        (data.read_threads >= 0, "config.data.read_threads must be 0 (one per core) or more."),
        (data.image_size >= 1, "config.data.image_size must be a positive number of pixels."),
        (data.shuffle_buffer >= 1, "config.data.shuffle_buffer must be at least 1."),
        (data.prefetch_to_device >= 0, "config.data.prefetch_to_device must be 0 (off) or more."),
        (
            data.shapes.label in ("multi_hot", "dominant"),
            f"config.data.shapes.label is {data.shapes.label!r}: use 'multi_hot' or 'dominant'.",
        ),
        (
            data.voc.builder in ("jaxvision", "tfds"),
            f"config.data.voc.builder is {data.voc.builder!r}: use 'jaxvision' or 'tfds'.",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    return ResolvedDataConfig(data)
