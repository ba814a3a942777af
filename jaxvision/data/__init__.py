"""Datasets (tfds builders) and the pipelines that end in per-device batches.

    pipelines = make_pipelines(config)       # prepares config.data's dataset once, then reads it
    for batch in pipelines.train(epoch):     # 'image' [D, B, H, W, C], 'label', 'mask', 'valid'
    for batch in pipelines.evals['test']():  # every example once; padding has valid == 0

Datasets (config.data.name): 'shapes' (embedded, generated offline, see `shapes`),
'oxford_flowers102' (tfds), 'voc_multilabel' and 'voc_segmentation' (PASCAL VOC, see `voc`),
'folder' (class sub-folders, see `folder`) and 'mask_folder' (images and masks, see
`mask_folder`). The fields of config.data are listed in `config`. Batches are dicts of arrays
`[local devices, per-device batch, ...]`, already placed on the devices
(config.data.prefetch_to_device batches ahead) or, with prefetch_to_device=0, numpy arrays.

Two readers (config.data.reader), which share one setup (plan.py): 'tf' (tf.data, pipeline.py)
and 'grain' (grain_pipeline.py, grain_fields.py), which reads datasets prepared in tfds'
array_record format without importing TensorFlow, so that a host without it can train. Only the
chosen reader's modules are imported.
"""

from __future__ import annotations

from jaxvision.data.batches import DatasetInfo, Pipelines
from jaxvision.data.config import (
    ResolvedDataConfig,
    check_data_config,
    default_data_config,
    filled_data_config,
    resolve_data_config,
)
from jaxvision.data.errors import DataError


def make_pipelines(config, **kwargs) -> Pipelines:
    """Prepares `config.data`'s dataset (once) and returns its pipelines for this process
    (see pipeline.make_pipelines for the arguments)."""
    data = resolve_data_config(config.get("data"))
    if data is not config.get("data"):  # a config not resolved yet: its data resolved here, once
        config = config.copy_and_resolve_references()
        config.data = data
    if data.reader == "grain":
        from jaxvision.data import grain_pipeline

        return grain_pipeline.make_pipelines(config, **kwargs)
    from jaxvision.data import pipeline

    return pipeline.make_pipelines(config, **kwargs)


def build_pipelines(source, data, **kwargs) -> Pipelines:
    """The tf.data pipelines of a prepared source (pipeline.build_pipelines)."""
    from jaxvision.data import pipeline

    return pipeline.build_pipelines(source, data, **kwargs)


__all__ = [
    "DataError",
    "DatasetInfo",
    "Pipelines",
    "build_pipelines",
    "default_data_config",
    "make_pipelines",
    "ResolvedDataConfig",
    "check_data_config",
    "filled_data_config",
    "resolve_data_config",
]
