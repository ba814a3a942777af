"""Datasets (tfds builders) and tf.data pipelines that end in per-device batches.

    pipelines = make_pipelines(config)       # prepares config.data's dataset once, then reads it
    for batch in pipelines.train(epoch):     # 'image' [D, B, H, W, C], 'label', 'mask', 'valid'
    for batch in pipelines.evals['test']():  # every example once; padding has valid == 0

Datasets (config.data.name): 'shapes' (embedded, generated offline, see `shapes`),
'oxford_flowers102' (tfds), 'voc_multilabel' and 'voc_segmentation' (PASCAL VOC, see `voc`)
and 'folder' (class sub-folders, see `folder`). The fields of config.data are listed in
`default_data_config`. Batches are dicts of arrays `[local devices, per-device batch, ...]`,
already placed on the devices (config.data.prefetch_to_device batches ahead) or, with
prefetch_to_device=0, numpy arrays.
"""

import warnings

import tensorflow as tf

# TensorFlow only feeds data: it must never take a GPU (or its memory) from JAX.
try:
    tf.config.set_visible_devices([], "GPU")
except RuntimeError:  # TensorFlow was initialised before this import and keeps its devices
    if tf.config.list_physical_devices("GPU"):
        warnings.warn(
            "TensorFlow was initialised before jaxvision.data was imported and may hold GPU "
            "memory: import jaxvision.data before using TensorFlow.",
            stacklevel=2,
        )

from jaxvision.data.config import default_data_config, resolve_data_config  # noqa: E402
from jaxvision.data.errors import DataError  # noqa: E402
from jaxvision.data.pipeline import DatasetInfo, Pipelines, build_pipelines, make_pipelines  # noqa: E402

__all__ = [
    "DataError",
    "DatasetInfo",
    "Pipelines",
    "build_pipelines",
    "default_data_config",
    "make_pipelines",
    "resolve_data_config",
]
