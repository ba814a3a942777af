"""A Keras InceptionV3 with deterministic random weights, and its weights in the Keras 2 HDF5
layout: the reference tests/test_convert.py converts and compares against."""

from __future__ import annotations

import re
from unittest import mock

import h5py
import keras
import numpy as np

SIZE = 75
NUM_CLASSES = 10


def canonical_names(km) -> dict[str, str]:
    """Keras layer name -> creation-order name (our Flax module name).

    Keras numbers auto-generated names across the whole process (a second model gets
    `conv2d_94`, ...), so the ranks of the numeric suffixes give the creation order.
    """
    by_cls: dict[str, list] = {}
    for layer in km.layers:
        m = re.fullmatch(r"(conv2d|batch_normalization)(?:_(\d+))?", layer.name)
        if m:
            by_cls.setdefault(m.group(1), []).append((int(m.group(2) or 0), layer.name))
    out = {"predictions": "predictions"}
    for cls, items in by_cls.items():
        for rank, (_, name) in enumerate(sorted(items)):
            out[name] = cls if rank == 0 else f"{cls}_{rank}"
    return out


def build_keras(include_top=True):
    # Keras-jax compiles one random-uniform program per kernel shape while building (~15 s on
    # a CPU); every weight is overwritten below, so skip that work when Keras allows it.
    try:
        patch = mock.patch.object(
            keras.initializers.GlorotUniform, "__call__", lambda self, shape, dtype=None: np.zeros(shape, "float32")
        )
        patch.start()
    except AttributeError:  # pragma: no cover - another Keras layout: build normally
        patch = None
    try:
        return keras.applications.InceptionV3(
            weights=None,
            include_top=include_top,
            classes=NUM_CLASSES,
            input_shape=(SIZE, SIZE, 3),
            classifier_activation=None,
        )
    finally:
        if patch is not None:
            patch.stop()


def randomise(km, seed=0):
    rng = np.random.default_rng(seed)
    for layer in km.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            beta, mean, var = (np.asarray(w) for w in layer.get_weights())
            layer.set_weights(
                [
                    rng.normal(0, 0.2, beta.shape).astype("f4"),
                    rng.normal(0, 0.2, mean.shape).astype("f4"),
                    rng.uniform(0.5, 2.0, var.shape).astype("f4"),
                ]
            )
        elif layer.weights:
            values = []
            for w in layer.get_weights():
                fan_in = np.prod(w.shape[:-1]) if w.ndim > 1 else 1
                values.append(rng.normal(0, np.sqrt(2.0 / fan_in), w.shape).astype("f4"))
            layer.set_weights(values)


def write_legacy_h5(path, km, *, include_top=True, name_offset=1):
    """Write `km`'s weights in the Keras 2 `save_weights` HDF5 layout.

    Root attribute `layer_names` (every layer, weightless ones too, in `model.layers` order),
    one group per layer with a `weight_names` attribute ('<layer>/<weight>:0') and the arrays
    at those paths. Layers with weights are renamed Keras-2 style (`conv2d_1` for the first
    convolution, as in the files Keras distributes) to show that names are not used.
    """
    canonical = canonical_names(km)
    layers = [layer for layer in km.layers if include_top or layer.name not in ("avg_pool", "predictions")]
    names = []
    for layer in layers:
        name = layer.name
        if name in canonical and name != "predictions":
            m = re.fullmatch(r"(conv2d|batch_normalization)(?:_(\d+))?", canonical[name])
            name = f"{m.group(1)}_{int(m.group(2) or 0) + name_offset}"
        names.append(name)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [n.encode("utf8") for n in names]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.6"
        for name, layer in sorted(zip(names, layers), key=lambda t: t[0]):
            g = f.create_group(name)
            weight_names = [f"{name}/{w.name}:0" for w in layer.weights]
            g.attrs["weight_names"] = [w.encode("utf8") for w in weight_names]
            for wn, w in zip(weight_names, layer.weights):
                g.create_dataset(wn, data=np.asarray(w))
