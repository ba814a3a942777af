"""Keras InceptionV3 weights (.h5) -> Flax variables for `jaxvision.models.InceptionV3`.

Three file layouts are read:

* **legacy HDF5** — what Keras 2 `save_weights(...h5)` writes and what Keras distributes for
  ImageNet (`inception_v3_weights_tf_dim_ordering_tf_kernels.h5` and `..._notop.h5`): a
  `layer_names` attribute lists the layers in the model's `layers` order, each layer group
  lists its `weight_names`. A full-model `.h5` (`model.save`) has the same under
  `model_weights`. Keras loads these files **by layer order** (the file's layers with weights
  zipped with its model's); so do we, with `KERAS_LAYER_ORDER` (checked against Keras by the
  tests) and a shape check on every array. The file's layer names are ignored (they depend on
  what else the writing session had built).
* **Keras 3 `.weights.h5`** — `layers/<class>_<k>/vars/<i>` where `<class>_<k>` is the k-th
  layer of that class in the model's `layers` order (Keras 3 addresses layers this way, not by
  their auto-generated names).
* a Keras 3 **`.keras`** archive — its `model.weights.h5` is read as above.

Every Flax leaf is filled exactly once: loaded, or (only the `predictions` head, when the file
has none or another number of classes) freshly initialised. Anything else that does not fit
stops with one `WeightConversionError` that says what to do.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.models import inception_v3 as iv3

# The layers with weights of `keras.applications.InceptionV3`, in the order of `model.layers`
# (depth-sorted, as Keras's functional graph orders them), named by creation order: `cK` is
# `conv2d_K`, `bK` is `batch_normalization_K` (K = 0 is the unsuffixed name), i.e. our Flax
# module names. This is the order in which Keras reads legacy .h5 files and numbers the
# layers of a Keras 3 `.weights.h5`. tests/test_convert.py checks it against Keras itself.
_KERAS_ORDER_TOKENS = """
c0 b0 c1 b1 c2 b2 c3 b3 c4 b4 c8 b8 c6 c9 b6 b9 c5 c7 c10 c11 b5 b7 b10 b11 c15 b15 c13 c16
b13 b16 c12 c14 c17 c18 b12 b14 b17 b18 c22 b22 c20 c23 b20 b23 c19 c21 c24 c25 b19 b21 b24
b25 c27 b27 c28 b28 c26 c29 b26 b29 c34 b34 c35 b35 c31 c36 b31 b36 c32 c37 b32 b37 c30 c33
c38 c39 b30 b33 b38 b39 c44 b44 c45 b45 c41 c46 b41 b46 c42 c47 b42 b47 c40 c43 c48 c49 b40
b43 b48 b49 c54 b54 c55 b55 c51 c56 b51 b56 c52 c57 b52 b57 c50 c53 c58 c59 b50 b53 b58 b59
c64 b64 c65 b65 c61 c66 b61 b66 c62 c67 b62 b67 c60 c63 c68 c69 b60 b63 b68 b69 c72 b72 c73
b73 c70 c74 b70 b74 c71 c75 b71 b75 c80 b80 c77 c81 b77 b81 c78 c79 c82 c83 c76 b78 b79 b82
b83 c84 b76 b84 c89 b89 c86 c90 b86 b90 c87 c88 c91 c92 c85 b87 b88 b91 b92 c93 b85 b93
predictions
"""


def _token_to_name(token: str) -> str:
    if token == "predictions":
        return token
    kind = {"c": "conv2d", "b": "batch_normalization"}[token[0]]
    return iv3.keras_layer_name(kind, int(token[1:]))


KERAS_LAYER_ORDER: tuple[str, ...] = tuple(_token_to_name(t) for t in _KERAS_ORDER_TOKENS.split())
HEAD = "predictions"

_EXPECTED_FILES = (
    "a Keras InceptionV3 weight file: the legacy HDF5 that Keras distributes "
    "(inception_v3_weights_tf_dim_ordering_tf_kernels[_notop].h5) or one written "
    "by Keras 2 save_weights, a Keras 3 .weights.h5, or a .keras archive"
)


class WeightConversionError(ValueError):
    """A weight file that cannot be loaded into the requested Flax model."""


@dataclass
class ConversionReport:
    """What `load_inception_v3` did with every Flax leaf ('/'-joined paths)."""

    source_format: str
    loaded: list[str] = field(default_factory=list)
    initialised: list[str] = field(default_factory=list)
    ignored_layers: list[str] = field(default_factory=list)


def _kind(name: str) -> str:
    if name == HEAD:
        return "dense"
    return "conv" if name.startswith("conv2d") else "bn"


# ---------------------------------------------------------------------------------- reading


def _decode(s) -> str:
    return s.decode("utf8") if isinstance(s, bytes) else str(s)


def _open_h5(path):
    import h5py

    path = str(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if "model.weights.h5" not in archive.namelist():
                    raise WeightConversionError(
                        f"{path} is a zip archive without model.weights.h5; expected {_EXPECTED_FILES}."
                    )
                return h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        return h5py.File(path, "r")
    except WeightConversionError:
        raise
    except FileNotFoundError:
        raise WeightConversionError(f"{path} does not exist; expected {_EXPECTED_FILES}.") from None
    except OSError as e:
        raise WeightConversionError(f"{path} cannot be read as HDF5 ({e}); expected {_EXPECTED_FILES}.") from None


def _attr_list(group, name: str) -> list[str]:
    """A list attribute as Keras writes it: whole, or in chunks `name0`, `name1`, ... when it
    would not fit in an HDF5 object header (Keras's `save_attributes_to_hdf5_group`)."""
    if name in group.attrs:
        return [_decode(v) for v in group.attrs[name]]
    out, i = [], 0
    while f"{name}{i}" in group.attrs:
        out.extend(_decode(v) for v in group.attrs[f"{name}{i}"])
        i += 1
    return out


def _is_legacy(group) -> bool:
    return "layer_names" in group.attrs or "layer_names0" in group.attrs


def _read_legacy(group) -> list[tuple[str, list[np.ndarray], list[str]]]:
    """[(file layer name, [arrays in the file's weight order], weight names)] for layers that
    have weights, in the file's `layer_names` order."""
    layers = []
    for name in _attr_list(group, "layer_names"):
        weight_names = _attr_list(group[name], "weight_names")
        if weight_names:
            layers.append((name, [np.asarray(group[name][w]) for w in weight_names], weight_names))
    return layers


def _read_keras3(group) -> dict[str, list[tuple[str, list[np.ndarray]]]]:
    """{'conv2d'|'batch_normalization'|'dense'|other: [(key, [vars])] in the file's k order}."""
    by_class: dict[str, list[tuple[int, str, list[np.ndarray]]]] = {}
    for key in group.keys():
        m = re.fullmatch(r"(.*?)(?:_(\d+))?", key)
        cls, k = m.group(1), int(m.group(2) or 0)
        variables = group[key].get("vars")
        if variables is None or len(variables) == 0:
            continue
        arrays = [np.asarray(variables[i]) for i in sorted(variables.keys(), key=int)]
        by_class.setdefault(cls, []).append((k, key, arrays))
    return {cls: [(key, arrays) for _, key, arrays in sorted(items)] for cls, items in by_class.items()}


def _layer_arrays_from_file(path) -> tuple[str, list[tuple[str, str, list[np.ndarray]]]]:
    """Read the file into [(our layer name, file layer name, arrays)] in KERAS_LAYER_ORDER.

    The head is included only if the file has one.
    """
    f = _open_h5(path)
    with f:
        try:
            return _read_layers(f, path)
        except WeightConversionError:
            raise
        except (KeyError, ValueError, TypeError, OSError) as e:
            raise WeightConversionError(
                f"{path} is a damaged or unexpected HDF5 file ({type(e).__name__}: {e}); expected {_EXPECTED_FILES}."
            ) from None


def _read_layers(f, path):
    if _is_legacy(f) or ("model_weights" in f and _is_legacy(f["model_weights"])):
        layers = _read_legacy(f if _is_legacy(f) else f["model_weights"])
        backbone = [n for n in KERAS_LAYER_ORDER if n != HEAD]
        if len(layers) not in (len(backbone), len(backbone) + 1):
            raise WeightConversionError(
                f"{path} holds {len(layers)} layers with weights, but Keras InceptionV3 has "
                f"{len(backbone)} without its top or {len(backbone) + 1} with it; expected "
                f"{_EXPECTED_FILES}."
            )
        for (file_name, _, weight_names), ours in zip(layers, backbone):
            if _kind(ours) == "bn" and any("gamma" in w for w in weight_names):
                raise WeightConversionError(
                    f"{path}: layer {file_name!r} has a batch-norm scale (gamma), which Keras "
                    f"InceptionV3 does not have; expected {_EXPECTED_FILES}."
                )
        return "legacy-h5", [
            (ours, file_name, arrays) for (file_name, arrays, _), ours in zip(layers, KERAS_LAYER_ORDER)
        ]
    if "layers" in f:
        classes = _read_keras3(f["layers"])
        convs = classes.pop("conv2d", [])
        bns = classes.pop("batch_normalization", [])
        dense = classes.pop("dense", [])
        n_conv = sum(_kind(n) == "conv" for n in KERAS_LAYER_ORDER)
        if classes or len(convs) != n_conv or len(bns) != n_conv or len(dense) > 1:
            found = {
                "conv2d": len(convs),
                "batch_normalization": len(bns),
                "dense": len(dense),
                **{k: len(v) for k, v in classes.items()},
            }
            raise WeightConversionError(
                f"{path} is a Keras 3 weights file whose layers with weights are {found}, but "
                f"Keras InceptionV3 has {n_conv} conv2d, {n_conv} batch_normalization and at "
                f"most 1 dense; expected {_EXPECTED_FILES} (of the InceptionV3 model itself, "
                f"not of a model that wraps it)."
            )
        # the k-th layer of a class in the file is the k-th of that class in Keras's order
        queues = {"conv": iter(convs), "bn": iter(bns), "dense": iter(dense)}
        out = []
        for ours in KERAS_LAYER_ORDER:
            item = next(queues[_kind(ours)], None)
            if item is not None:
                out.append((ours, item[0], item[1]))
        return "keras3-weights-h5", out
    raise WeightConversionError(
        f"{path} is HDF5 but has neither a layer_names attribute (legacy Keras) nor a layers "
        f"group (Keras 3); expected {_EXPECTED_FILES}."
    )


# ---------------------------------------------------------------------------------- mapping


_LAYER_ARRAYS = {"conv": ("kernel",), "bn": ("beta", "moving_mean", "moving_variance"), "dense": ("kernel", "bias")}


def _flax_layer_leaves(path, file_name: str, name: str, arrays: list[np.ndarray]) -> dict[tuple[str, ...], np.ndarray]:
    """Keras arrays of one layer -> {(collection, module, leaf): array}."""
    kind = _kind(name)
    expected = _LAYER_ARRAYS[kind]
    if len(arrays) != len(expected):
        raise WeightConversionError(
            f"{path}: Keras layer {file_name!r} (position of {name!r}) holds {len(arrays)} "
            f"arrays where InceptionV3 has {len(expected)} ({', '.join(expected)}); the file is "
            f"not {_EXPECTED_FILES}, or its layers are out of order."
        )
    if kind == "conv":
        return {("params", name, "kernel"): arrays[0]}
    if kind == "bn":  # Keras order with scale=False: beta, moving_mean, moving_variance
        return {
            ("params", name, "bias"): arrays[0],
            ("batch_stats", name, "mean"): arrays[1],
            ("batch_stats", name, "var"): arrays[2],
        }
    return {("params", name, "kernel"): arrays[0], ("params", name, "bias"): arrays[1]}


def _template(model: iv3.InceptionV3) -> dict[tuple[str, ...], Any]:
    shapes = jax.eval_shape(
        model.init, jax.random.PRNGKey(0), jnp.zeros((1, iv3.MIN_INPUT_SIZE, iv3.MIN_INPUT_SIZE, 3))
    )
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]:
        flat[tuple(p.key for p in path)] = leaf
    return flat


def _unflatten(flat: dict[tuple[str, ...], Any]) -> dict:
    out: dict = {}
    for path, value in flat.items():
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def _fill(path, layers, template: dict, report: ConversionReport) -> dict[tuple[str, ...], Any]:
    """The template's leaves that the file's layers fill (the file's head only if it fits)."""
    filled: dict[tuple[str, ...], Any] = {}
    for ours, file_name, arrays in layers:
        leaves = _flax_layer_leaves(path, file_name, ours, arrays)
        if ours == HEAD:
            want = template.get(("params", HEAD, "kernel"))
            if want is None:  # the model has no top: skip the file's head
                report.ignored_layers.append(file_name)
                continue
            if tuple(want.shape) != arrays[0].shape:  # a new head (e.g. 102 classes)
                report.ignored_layers.append(file_name)
                continue
        for key, array in leaves.items():
            if key not in template:
                raise WeightConversionError(
                    f"{path}: Keras layer {file_name!r} maps to {'/'.join(key)}, which the Flax model does not have."
                )
            want = tuple(template[key].shape)
            if array.shape != want:
                raise WeightConversionError(
                    f"{path}: Keras layer {file_name!r} (position of {ours!r}) has shape "
                    f"{array.shape} for {'/'.join(key[1:])} but the Flax model needs {want}; "
                    f"the file is not {_EXPECTED_FILES}, or its layers are out of order."
                )
            if key in filled:
                raise WeightConversionError(f"{path}: {'/'.join(key)} would be filled twice.")
            filled[key] = jnp.asarray(array, jnp.float32)
            report.loaded.append("/".join(key))
    return filled


def load_inception_v3(path, model: iv3.InceptionV3 | None = None, *, rng=None, return_report: bool = False):
    """Load Keras InceptionV3 weights from `path` into variables for `model`.

    Args:
      path: a legacy `.h5`, a Keras 3 `.weights.h5` or a `.keras` archive (see module doc).
      model: the Flax model to fill (default `InceptionV3()`: 1000 classes with top).
      rng: PRNG key for a head that must be freshly initialised (a model with a top and a
        file without one, or with a different number of classes); required only then.
      return_report: also return a `ConversionReport`.

    Returns:
      `{'params': ..., 'batch_stats': ...}` (float32 arrays), and the report if asked.

    Raises:
      WeightConversionError: the file is unreadable, is not InceptionV3, or does not fit.
    """
    model = iv3.InceptionV3() if model is None else model
    fmt, layers = _layer_arrays_from_file(path)
    template = _template(model)
    report = ConversionReport(source_format=fmt)
    filled = _fill(path, layers, template, report)
    missing = [k for k in template if k not in filled]
    head_keys = [k for k in missing if k[:2] == ("params", HEAD)]
    if len(missing) != len(head_keys):
        other = ["/".join(k) for k in missing if k not in head_keys]
        raise WeightConversionError(
            f"{path} leaves {len(other)} Flax leaves unfilled (first: {other[0]}); expected {_EXPECTED_FILES}."
        )
    if head_keys:
        if rng is None:
            raise WeightConversionError(
                f"{path} has no {model.num_classes}-class head for this model: pass rng= to "
                f"load_inception_v3 to initialise a new one."
            )
        head = iv3.init_head(rng, model.num_classes)
        for key in head_keys:
            filled[key] = head[key[2]]
            report.initialised.append("/".join(key))

    assert set(filled) == set(template)
    variables = _unflatten(filled)
    return (variables, report) if return_report else variables
