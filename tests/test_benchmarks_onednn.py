"""The oneDNN convolution prototype (benchmarks/onednn): each of its three passes against XLA's
on strided, padded and asymmetric shapes, and the ablation's swap inside a model's gradient.
Needs the bench extra's oneDNN and a C++ compiler; skipped without them."""

import os
import shutil
import sysconfig

import jax
import jax.numpy as jnp
import pytest
from jax import lax

_HEADERS = os.path.join(sysconfig.get_paths()["data"], "include", "oneapi", "dnnl", "dnnl.hpp")
pytestmark = pytest.mark.skipif(
    not (os.path.exists(_HEADERS) and shutil.which("g++")),
    reason="oneDNN's headers (the bench extra: pip install -e .[bench]) or g++ are missing",
)

# float32 sums in another order: the largest difference seen is 1.7e-6 of the largest value.
RTOL = 1e-5
_NHWC = ("NHWC", "HWIO", "NHWC")


def _relative(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


@pytest.mark.parametrize(
    "x_shape, w_shape, strides, padding",
    [
        ((2, 9, 9, 8), (3, 3, 8, 16), (1, 1), "SAME"),
        ((2, 17, 15, 6), (3, 3, 6, 20), (2, 2), "VALID"),
        ((2, 11, 11, 12), (1, 7, 12, 10), (1, 1), "SAME"),
        ((3, 13, 13, 5), (5, 5, 5, 7), (2, 1), "SAME"),  # odd padding: one more row after than before
    ],
)
def test_each_pass_is_xlas_convolution(x_shape, w_shape, strides, padding, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXVISION_CACHE", str(tmp_path))
    from benchmarks import onednn

    kx, kw, kg = jax.random.split(jax.random.PRNGKey(0), 3)
    x, w = jax.random.normal(kx, x_shape), jax.random.normal(kw, w_shape)
    pads = tuple(map(tuple, lax.padtype_to_pads(x_shape[1:3], w_shape[:2], strides, padding)))

    def xla(x, w):
        return lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=_NHWC)

    y, vjp = jax.vjp(xla, x, w)
    g = jax.random.normal(kg, y.shape)
    dx, dw = vjp(g)
    assert _relative(jax.jit(onednn.forward, static_argnums=(2, 3))(x, w, strides, pads), y) < RTOL
    assert _relative(jax.jit(onednn.input_grad, static_argnums=(2, 3, 4))(g, w, x_shape, strides, pads), dx) < RTOL
    assert _relative(jax.jit(onednn.kernel_grad, static_argnums=(2, 3, 4))(x, g, w_shape, strides, pads), dw) < RTOL


def test_the_ablation_swaps_xlas_passes_and_keeps_the_gradient(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXVISION_CACHE", str(tmp_path))
    from benchmarks import onednn
    from jaxvision.models import cpu_conv
    from jaxvision.models.segmentation import Segmenter

    model = Segmenter(filters=(16, 8, 8))
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 16, 16, 1))
    params = model.init(jax.random.PRNGKey(1), x)

    def loss(p):
        return jnp.mean(jax.nn.sigmoid(model.apply(p, x)) ** 2)

    expected = jax.grad(loss)(params)
    monkeypatch.setattr(cpu_conv, "_cpu_conv", onednn.cpu_conv_with_onednn)
    program = jax.jit(jax.grad(loss)).lower(params).as_text()
    assert "OnednnConvKernelGrad" in program and "OnednnConvForward" in program
    got = jax.grad(loss)(params)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        assert _relative(a, b) < RTOL
