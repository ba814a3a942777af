"""The opt-in oneDNN convolutions (models/onednn_conv.py, JAXVISION_ONEDNN=1): each of the three
passes against XLA's on strided, padded and asymmetric shapes, a model's gradient through
cpu_conv with it, and the fallback when it cannot be built. The numerical tests need the
oneDNN extra and g++ and are skipped without them."""

import jax
import jax.numpy as jnp
import pytest
from jax import lax

from jaxvision.models import cpu_conv, onednn_conv

needs_onednn = pytest.mark.skipif(onednn_conv.missing() is not None, reason=str(onednn_conv.missing()))

# float32 sums in another order: the largest difference seen is 1.7e-6 of the largest value.
RTOL = 1e-5
_NHWC = ("NHWC", "HWIO", "NHWC")


def _relative(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


@pytest.fixture
def onednn(tmp_path, monkeypatch):
    """JAXVISION_ONEDNN=1 in a fresh build cache; cpu_conv's choices forgotten before and after."""
    monkeypatch.setenv(onednn_conv.SWITCH, "1")
    monkeypatch.setenv("JAXVISION_CACHE", str(tmp_path))
    for cached in (onednn_conv.enabled, cpu_conv._cpu_conv):
        cached.cache_clear()
    yield
    for cached in (onednn_conv.enabled, cpu_conv._cpu_conv):
        cached.cache_clear()


@needs_onednn
@pytest.mark.parametrize(
    "x_shape, w_shape, strides, padding",
    [
        ((2, 9, 9, 8), (3, 3, 8, 16), (1, 1), "SAME"),
        ((2, 17, 15, 6), (3, 3, 6, 20), (2, 2), "VALID"),
        ((2, 11, 11, 12), (1, 7, 12, 10), (1, 1), "SAME"),
        ((3, 13, 13, 5), (5, 5, 5, 7), (2, 1), "SAME"),  # odd padding: one more row after than before
    ],
)
def test_each_pass_is_xlas_convolution(onednn, x_shape, w_shape, strides, padding):
    assert onednn_conv.enabled()
    kx, kw, kg = jax.random.split(jax.random.PRNGKey(0), 3)
    x, w = jax.random.normal(kx, x_shape), jax.random.normal(kw, w_shape)
    pads = tuple(map(tuple, lax.padtype_to_pads(x_shape[1:3], w_shape[:2], strides, padding)))

    def xla(x, w):
        return lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=_NHWC)

    y, vjp = jax.vjp(xla, x, w)
    g = jax.random.normal(kg, y.shape)
    dx, dw = vjp(g)
    assert _relative(jax.jit(onednn_conv.forward, static_argnums=(2, 3))(x, w, strides, pads), y) < RTOL
    input_grad = jax.jit(onednn_conv.input_grad, static_argnums=(2, 3, 4))
    assert _relative(input_grad(g, w, x_shape, strides, pads), dx) < RTOL
    kernel_grad = jax.jit(onednn_conv.kernel_grad, static_argnums=(2, 3, 4))
    assert _relative(kernel_grad(x, g, w_shape, strides, pads), dw) < RTOL


@needs_onednn
def test_a_models_gradient_goes_through_onednn_where_xla_would_and_keeps_its_value(onednn, monkeypatch):
    from jaxvision.models.segmentation import Segmenter

    model = Segmenter(filters=(16, 8, 8))
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 16, 16, 1))
    params = model.init(jax.random.PRNGKey(1), x)

    def loss(p):
        return jnp.mean(jax.nn.sigmoid(model.apply(p, x)) ** 2)

    got = jax.grad(loss)(params)
    program = jax.jit(jax.grad(loss)).lower(params).as_text()
    assert program.count("OnednnConvForward") == 5  # all but the 1-channel logits (col2im)
    assert "OnednnConvKernelGrad" in program and "OnednnConvInputGrad" in program
    monkeypatch.delenv(onednn_conv.SWITCH)
    onednn_conv.enabled.cache_clear()
    cpu_conv._cpu_conv.cache_clear()
    assert "Onednn" not in jax.jit(jax.grad(loss)).lower(params).as_text()
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(jax.grad(loss)(params))):
        assert _relative(a, b) < RTOL


@needs_onednn
@pytest.mark.parametrize(
    "w_shape, kernel_grad",
    [
        ((1, 1, 8, 16), "OnednnConvKernelGrad"),  # a 1x1's kernel gradient: oneDNN over the matmul
        ((3, 3, 1, 128), "dot_general"),  # a first layer's: the matmul rewrite stays
    ],
)
def test_which_kernel_gradients_go_to_onednn(onednn, w_shape, kernel_grad):
    x = jax.random.normal(jax.random.key(0), (2, 9, 9, w_shape[2]))
    w = jax.random.normal(jax.random.key(1), w_shape)
    conv = lambda x, w: cpu_conv.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=_NHWC)
    loss = lambda w: jnp.sum(conv(x, w) ** 2)
    assert kernel_grad in jax.jit(jax.grad(loss)).lower(w).as_text()
    plain = lambda w: jnp.sum(lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=_NHWC) ** 2)
    assert _relative(jax.grad(loss)(w), jax.grad(plain)(w)) < RTOL


def test_without_onednn_a_warning_names_the_fix_and_xlas_convolutions_run(onednn, monkeypatch):
    monkeypatch.setattr(onednn_conv, "_prefix", lambda: "/nonexistent")
    with pytest.warns(UserWarning, match=r"JAXVISION_ONEDNN is set, but oneDNN is not installed .*pip install"):
        assert not onednn_conv.enabled()
    x, w = jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 2, 8))  # 8 outputs: XLA's kernel, not col2im
    program = (
        jax.jit(lambda x, w: cpu_conv.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=_NHWC))
        .lower(x, w)
        .as_text()
    )
    assert "Onednn" not in program and "convolution" in program


@needs_onednn
def test_a_failed_build_is_one_line_of_warning_and_xlas_convolutions_run(onednn, tmp_path, monkeypatch):
    broken = tmp_path / "broken.cc"
    broken.write_text("this is not C++\n")
    monkeypatch.setattr(onednn_conv, "SOURCE", str(broken))
    monkeypatch.setattr(onednn_conv, "library_path", lambda: str(tmp_path / "lib" / "broken.so"))
    # uncached, so that a library registered by an earlier test is neither reused nor forgotten
    monkeypatch.setattr(onednn_conv, "_register", onednn_conv._register.__wrapped__)
    with pytest.warns(UserWarning) as caught:
        assert not onednn_conv.enabled()
    (message,) = [str(w.message) for w in caught]
    assert "building" in message and "failed (" in message and "\n" not in message
