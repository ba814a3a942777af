"""The CPU-speed building blocks agree with XLA's own convolution and pooling."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from benchmarks.alternatives import max_pool_selects
from jaxvision.models import cpu_conv
from jaxvision.models.layers import avg_pool3, conv3x3, max_pool, max_pool2, upsample2

CASES = [  # (input shape, kernel shape, strides, padding): every kind the models use, and more
    ((2, 9, 8, 3), (3, 3, 3, 5), (1, 1), "SAME"),
    ((2, 11, 10, 4), (3, 3, 4, 6), (2, 2), "VALID"),
    ((1, 8, 9, 4), (1, 7, 4, 3), (1, 1), "SAME"),
    ((1, 8, 9, 4), (7, 1, 4, 3), (1, 1), "SAME"),
    ((3, 6, 6, 5), (1, 1, 5, 2), (1, 1), "VALID"),
    ((2, 10, 10, 3), (3, 3, 3, 4), (2, 2), "SAME"),
    ((2, 9, 8, 6), (3, 3, 6, 4), (1, 1), "SAME"),  # fewer outputs: g is shifted
    ((2, 7, 7, 5), (3, 3, 5, 2), (1, 1), ((0, 2), (2, 0))),  # uneven padding
    ((1, 6, 6, 4), (2, 2, 4, 3), (1, 1), ((0, 3), (0, 0))),  # padding beyond the kernel
    ((2, 6, 7, 8), (3, 3, 8, 6), (1, 1), "SAME"),  # XLA's forward, g shifted
    ((1, 6, 6, 9), (2, 2, 9, 3), (1, 1), ((0, 3), (1, 0))),  # col2im, padding beyond the kernel
    ((2, 5, 5, 40), (1, 1, 40, 8), (1, 1), "SAME"),  # 1x1: one matmul
    ((2, 8, 8, 8), (3, 3, 8, 6), (1, 1), "VALID"),  # im2col forward, XLA's input gradient
]


def _grads(conv, x, w, g):
    return jax.vjp(conv, x, w)[1](g)


@pytest.mark.parametrize("x_shape,w_shape,strides,padding", CASES)
def test_conv_value_and_gradients_match_xla_in_float64(x_shape, w_shape, strides, padding):
    # float64: both sides compute the same sums, so they agree to rounding (1e-12), which a
    # wrong tap offset or stride would miss by far more.
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(0), 3)
        x = jax.random.normal(keys[0], x_shape, jnp.float64)
        w = jax.random.normal(keys[1], w_shape, jnp.float64)
        dims = ("NHWC", "HWIO", "NHWC")
        ours = lambda x, w: cpu_conv.conv_general_dilated(x, w, strides, padding, dimension_numbers=dims)
        xla = lambda x, w: lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=dims)
        y = ours(x, w)
        g = jax.random.normal(keys[2], y.shape, jnp.float64)
        np.testing.assert_allclose(y, xla(x, w), rtol=1e-12, atol=1e-12)
        for a, b in zip(_grads(ours, x, w, g), _grads(xla, x, w, g)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "x_shape,w_shape,strides,padding,rewritten",
    [
        ((2, 16, 16, 3), (3, 3, 3, 128), (1, 1), "SAME", {"kernel grad"}),  # first layer, many outputs
        ((2, 16, 16, 3), (3, 3, 3, 8), (1, 1), "SAME", set()),  # first layer, few outputs
        ((2, 16, 16, 8), (3, 3, 8, 1), (1, 1), "SAME", {"forward", "input grad", "kernel grad"}),  # logits: col2im
        ((2, 16, 16, 40), (1, 1, 40, 8), (1, 1), "SAME", {"kernel grad"}),  # 1x1
        ((2, 17, 17, 16), (3, 3, 16, 8), (2, 2), "VALID", set()),  # strided, unpadded
        ((2, 16, 16, 8), (3, 3, 8, 8), (1, 1), "SAME", set()),
    ],
)
def test_cpu_lowering_runs_the_rewrites_it_names_and_xla_elsewhere(x_shape, w_shape, strides, padding, rewritten):
    # Each pass that lowering() rewrites compiles to matmuls with no convolution left; the others
    # are XLA's (benchmarks/conv_shapes.py measured which is faster; XLA itself may turn a 1x1
    # convolution into a dot).
    pads = lax.padtype_to_pads(x_shape[1:3], w_shape[:2], strides, padding)
    kinds = cpu_conv.lowering(w_shape, strides, tuple(map(tuple, pads)))
    assert {p for p, kind in kinds.items() if kind != "xla"} == rewritten
    x, w = jnp.ones(x_shape), jnp.ones(w_shape)
    conv = lambda x, w: cpu_conv.conv_general_dilated(
        x, w, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    passes = {
        "forward": jax.jit(conv).lower(x, w),
        "input grad": jax.jit(jax.grad(lambda x: conv(x, w).sum())).lower(x),
        "kernel grad": jax.jit(jax.grad(lambda w: conv(x, w).sum())).lower(w),
    }
    for name in rewritten:
        hlo = passes[name].compile().as_text()
        assert "convolution(" not in hlo and " dot(" in hlo, name


def test_dilated_convolution_falls_back_to_xla():
    x = jax.random.normal(jax.random.key(1), (1, 9, 9, 2))
    w = jax.random.normal(jax.random.key(2), (3, 3, 2, 3))
    args = ((1, 1), "SAME")
    kw = dict(rhs_dilation=(2, 2), dimension_numbers=("NHWC", "HWIO", "NHWC"))
    f = lambda w: cpu_conv.conv_general_dilated(x, w, *args, **kw).sum()
    g = lambda w: lax.conv_general_dilated(x, w, *args, **kw).sum()
    np.testing.assert_array_equal(jax.grad(f)(w), jax.grad(g)(w))


def test_conv3x3_float32_gradients_match_plain_flax_conv():
    # float32, different summation order: 1e-5 relative is ~100 ulps of the largest entries.
    x = jax.random.normal(jax.random.key(3), (4, 16, 16, 8))
    ours = conv3x3(6, name="c")
    plain = nn.Conv(6, (3, 3), padding="SAME")
    params = ours.init(jax.random.key(4), x)
    loss = lambda m: lambda p: jnp.sum(jnp.tanh(m.apply(p, x)))
    a, b = jax.grad(loss(ours))(params), jax.grad(loss(plain))(params)
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5), a, b)


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (1, 7, 9, 2)])
def test_max_pool2_matches_flax_max_pool(shape):
    # Continuous random values have no ties, so even the gradient is the same bit for bit.
    x = jax.random.normal(jax.random.key(5), shape)
    reference = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
    np.testing.assert_array_equal(max_pool2(x), reference(x))
    g = jax.random.normal(jax.random.key(6), reference(x).shape)
    np.testing.assert_array_equal(jax.vjp(max_pool2, x)[1](g)[0], jax.vjp(reference, x)[1](g)[0])


def test_max_pool2_splits_the_gradient_of_a_tie():
    x = jnp.zeros((1, 2, 2, 1))
    np.testing.assert_array_equal(jax.grad(lambda x: max_pool2(x).sum())(x), jnp.full(x.shape, 0.25))
    x = jnp.array([0.0, 1.0, 1.0, -1.0]).reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(jax.grad(lambda x: max_pool2(x).sum())(x).ravel(), [0, 0.5, 0.5, 0])


def test_upsample2_and_its_gradient_match_repeat():
    # Sums of four values in another order: float32 rounding, 1e-6 relative.
    x = jax.random.normal(jax.random.key(7), (2, 3, 5, 4))
    reference = lambda x: jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(upsample2(x), reference(x))
    g = jax.random.normal(jax.random.key(8), (2, 6, 10, 4))
    np.testing.assert_allclose(jax.vjp(upsample2, x)[1](g)[0], jax.vjp(reference, x)[1](g)[0], rtol=1e-6, atol=1e-6)


# the models' pool, and the benchmarks' copy of its CPU kernels for every platform
POOLS = pytest.mark.parametrize("pool", [max_pool, max_pool_selects], ids=["models", "every_platform"])


@POOLS
@pytest.mark.parametrize("shape", [(2, 9, 9, 3), (1, 10, 7, 2)])
def test_overlapping_max_pool_matches_flax(shape, pool):
    # No ties in continuous random values: the same maxima; overlapping windows add their
    # gradients in another order, so float32 rounding (1e-6).
    x = jax.random.normal(jax.random.key(9), shape)
    reference = lambda x: nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
    ours = lambda x: pool(x, (3, 3), (2, 2))
    np.testing.assert_array_equal(ours(x), reference(x))
    g = jax.random.normal(jax.random.key(10), reference(x).shape)
    np.testing.assert_allclose(jax.vjp(ours, x)[1](g)[0], jax.vjp(reference, x)[1](g)[0], rtol=1e-6, atol=1e-6)


@POOLS
def test_overlapping_max_pool_gives_a_tie_to_the_first_maximum_as_xla_does(pool):
    x = jnp.zeros((1, 5, 5, 1))
    grad = lambda f: jax.grad(lambda x: f(x).sum())(x)
    ours = grad(lambda x: pool(x, (3, 3), (2, 2)))
    np.testing.assert_array_equal(ours, grad(lambda x: nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")))
    assert float(ours.sum()) == 4.0


@pytest.mark.parametrize("shape", [(2, 9, 9, 3), (1, 10, 7, 2), (3, 1, 1, 4), (1, 2, 5, 1)])
def test_avg_pool3_matches_flax_excluding_the_padding(shape):
    # The window sum adds the nine values in another order than reduce_window: float32
    # rounding of a sum of nine unit normals and its division (1e-6).
    x = jax.random.normal(jax.random.key(11), shape)
    reference = lambda x: nn.avg_pool(x, (3, 3), strides=(1, 1), padding="SAME", count_include_pad=False)
    np.testing.assert_allclose(jax.jit(avg_pool3)(x), reference(x), rtol=1e-6, atol=1e-6)
    g = jax.random.normal(jax.random.key(12), shape)
    ours, theirs = (jax.jit(lambda x, g, f=f: jax.vjp(f, x)[1](g)[0])(x, g) for f in (avg_pool3, reference))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_avg_pool3_of_a_constant_is_the_constant_up_to_the_edges():
    # Padding excluded from the counts: a corner averages 4 ones, an edge 6, inside 9; all 1.
    np.testing.assert_allclose(avg_pool3(jnp.ones((1, 4, 5, 2))), 1.0, rtol=1e-7)
