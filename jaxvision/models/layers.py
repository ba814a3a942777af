"""Small building blocks shared by the models, with Keras's defaults.

Both papers trained Keras models, so the layers here start from Keras's defaults:
Glorot-uniform kernels, zero biases, 'same' 3x3 convolutions, 2x2 max pooling and
nearest-neighbour 2x upsampling (Keras `UpSampling2D`'s default).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxvision.models.cpu_conv import conv_general_dilated

Dtype = Any

# Keras's default initialisers (Conv2D / Dense): glorot_uniform kernels, zero biases.
kernel_init = nn.initializers.glorot_uniform()
bias_init = nn.initializers.zeros


def conv3x3(features: int, *, name: str, dtype: Dtype = jnp.float32, use_bias: bool = True) -> nn.Conv:
    """A 3x3 'same' convolution with Keras's initialisers (and a fast CPU kernel gradient)."""
    return nn.Conv(
        features,
        (3, 3),
        padding="SAME",
        use_bias=use_bias,
        kernel_init=kernel_init,
        bias_init=bias_init,
        dtype=dtype,
        name=name,
        conv_general_dilated=conv_general_dilated,
    )


def dense(features: int, *, name: str, dtype: Dtype = jnp.float32) -> nn.Dense:
    """A dense layer with Keras's initialisers."""
    return nn.Dense(features, kernel_init=kernel_init, bias_init=bias_init, dtype=dtype, name=name)


def max_pool2(x):
    """Keras `MaxPooling2D((2, 2))`: 2x2 window, stride 2, 'valid' (odd sizes lose the last row/column).

    The elementwise maximum of the four corners of each window rather than `nn.max_pool`:
    XLA differentiates `reduce_window` with `select_and_scatter`, a slow loop on CPU, and this
    with elementwise selects (the pool's forward + backward about 6x faster on CPU; on an H100
    training steps with `nn.max_pool` ran at 0.80-0.83x; benchmarks/RESULTS.md). The forward is
    identical; on a tie inside a window the gradient is split between the tied values instead of
    going to one (after a ReLU such ties are zeros, whose gradient the ReLU zeroes anyway).
    """
    b, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c)
    top = jnp.maximum(x[:, :, 0, :, 0], x[:, :, 0, :, 1])
    bottom = jnp.maximum(x[:, :, 1, :, 0], x[:, :, 1, :, 1])
    return jnp.maximum(top, bottom)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def max_pool(x, window: tuple[int, int], strides: tuple[int, int]):
    """A 'valid' max pool, `nn.max_pool`'s forward, with a gradient written out for XLA:CPU.

    For overlapping windows (InceptionV3's 3x3 / 2), where the corner trick of `max_pool2`
    does not apply. XLA differentiates `reduce_window` with a slow `select_and_scatter`; here
    each window position's gradient goes to the first maximum in the window, as XLA (and
    TensorFlow) choose, through kh*kw strided selects (3-5x faster on CPU). On CPU the forward
    is the elementwise maximum of those kh*kw strided views too (3-6x XLA:CPU's `reduce_window`
    at InceptionV3's shapes, the same values). Other platforms keep `reduce_window` and its
    `select_and_scatter` gradient, the program of the H100 runs in benchmarks/RESULTS.md.
    """
    return max_pool_forward(x, window, strides)


def max_pool_forward(x, window, strides):
    flax_pool = lambda x: _flax_max_pool(x, window, strides)
    views = lambda x: functools.reduce(jnp.maximum, window_views(x, window, strides))
    return lax.platform_dependent(x, cpu=views, default=flax_pool)


def window_views(x, window, strides):
    """The kh*kw strided views of `x` that a 'valid' pool's windows are made of, tap-major."""
    b, h, w, c = x.shape
    (sh, sw), (kh, kw) = strides, window
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    ends = lambda i, j: (b, i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, c)
    return [lax.slice(x, (0, i, j, 0), ends(i, j), (1, sh, sw, 1)) for i in range(kh) for j in range(kw)]


def _max_pool_fwd(x, window, strides):
    y = max_pool(x, window, strides)
    return y, (x, y)


def _max_pool_bwd(window, strides, res, g):
    # The platform switch sits inside the custom gradient, not around it: around it, a GPU's
    # program would also build zeros for the CPU branch's residuals (tests/test_other_platforms.py).
    x, y = res
    flax_grad = lambda g: jax.vjp(lambda x: _flax_max_pool(x, window, strides), x)[1](g)[0]
    selects = lambda g: max_pool_grad_by_selects(window, strides, x, y, g)
    return (lax.platform_dependent(g, cpu=selects, default=flax_grad),)


def _flax_max_pool(x, window, strides):
    return nn.max_pool(x, window, strides=strides, padding="VALID")


def max_pool_grad_by_selects(window, strides, x, y, g):
    """The gradient `g` of `y = max_pool(x)` sent to each window's first maximum, by selects."""
    b, h, w, c = x.shape
    (ho, wo), (sh, sw) = y.shape[1:3], strides
    taken = jnp.zeros(y.shape, bool)
    grad = jnp.zeros_like(x)
    views = iter(window_views(x, window, strides))
    for i in range(window[0]):
        for j in range(window[1]):
            ends = (b, i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, c)
            first = (next(views) == y) & ~taken
            taken = taken | first
            spread = ((0, 0, 0), (i, h - ends[1], sh - 1), (j, w - ends[2], sw - 1), (0, 0, 0))
            grad = grad + lax.pad(jnp.where(first, g, 0), jnp.zeros((), g.dtype), spread)
    return grad


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def avg_pool3(x):
    """Keras `AveragePooling2D((3, 3), strides=1, padding='same')`: the mean over each 3x3
    window's pixels inside the image (`nn.avg_pool(..., count_include_pad=False)`).

    On CPU the window sum is nine shifted views of the zero-padded input added in one fusion,
    and its gradient the same sum of the gradient divided by the counts (the window sum is its
    own transpose): forward and backward 1.5-1.8x XLA:CPU's `reduce_window` and its gradient at
    InceptionV3's shapes (`benchmarks/pools.py`). Only the order of the float32 additions differs. Other platforms keep
    `reduce_window`.
    """
    # flax divides by float32 counts, which would promote a bf16 input
    flax_pool = lambda x: nn.avg_pool(x, (3, 3), strides=(1, 1), padding="SAME", count_include_pad=False).astype(
        x.dtype
    )
    return lax.platform_dependent(x, cpu=_window_mean3, default=flax_pool)


def _window_sum3(x):
    h, w = x.shape[1:3]
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return sum(padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3))


def _window_counts3(h: int, w: int, dtype):
    """How many pixels of the image each 3x3 window covers (9 inside, 6 at an edge, 4 at a corner)."""
    per_axis = lambda n: 1 + (np.arange(n) > 0) + (np.arange(n) < n - 1)
    return jnp.asarray(np.outer(per_axis(h), per_axis(w))[None, :, :, None], dtype)


@jax.custom_vjp
def _window_mean3(x):
    return _window_sum3(x) / _window_counts3(*x.shape[1:3], x.dtype)


def _window_mean3_fwd(x):
    return _window_mean3(x), None


def _window_mean3_bwd(_, g):
    return (_window_sum3(g / _window_counts3(*g.shape[1:3], g.dtype)),)


_window_mean3.defvjp(_window_mean3_fwd, _window_mean3_bwd)


@jax.custom_vjp
def upsample2(x):
    """Keras `UpSampling2D((2, 2))`: nearest-neighbour 2x upsampling of an NHWC tensor.

    Its gradient sums each 2x2 block with elementwise adds: XLA:CPU's reduction for the
    gradient of `jnp.repeat` or of a broadcast took 6x / 1.5x as long (benchmarks/RESULTS.md).
    """
    b, h, w, c = x.shape
    return jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c)).reshape(b, 2 * h, 2 * w, c)


def _upsample2_fwd(x):
    return upsample2(x), None


def _upsample2_bwd(_, g):
    b, h2, w2, c = g.shape
    g = g.reshape(b, h2 // 2, 2, w2 // 2, 2, c)
    return ((g[:, :, 0, :, 0] + g[:, :, 0, :, 1]) + (g[:, :, 1, :, 0] + g[:, :, 1, :, 1]),)


upsample2.defvjp(_upsample2_fwd, _upsample2_bwd)


class Dropout(nn.Module):
    """`nn.Dropout` (inverted dropout: kept units divided by the keep probability) with each
    unit's draw an 8- or 16-bit slice of a random word instead of a whole 32-bit word.

    Generating the random words is dropout's whole cost on CPU: in the deep CNN's training step
    (batch 32, 128x128) flax's 7.3M words were a fifth of the step's op time. A word serves 4
    units when the keep probability is a multiple of 1/256 (rates 0.25, 0.5, ...: exact), else 2
    with the keep probability rounded to 1/65,536 (off by at most 2^-17; kept units are divided
    by the rounded one, so the expectation stays exact). The units sharing a word lie along the
    first axis, so that taking the slices apart is a cheap concatenation XLA fuses. The deep
    CNN's ablations (`./launch.sh bench --sections ablations --ablation-models deep_cnn`) time
    it against flax's.
    """

    rate: float
    deterministic: bool = False
    rng_collection: str = "dropout"

    @nn.compact
    def __call__(self, x):
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"Dropout rate {self.rate} is outside [0, 1]: give the fraction of units to drop.")
        lanes = 4 if float((1.0 - self.rate) * 256).is_integer() else 2
        width = 32 // lanes
        threshold = round((1.0 - self.rate) * (1 << width))
        if self.deterministic or threshold == 1 << width:
            return x
        if threshold == 0:
            return jnp.zeros_like(x)
        units = x.reshape(x.shape or (1,))
        first, *rest = units.shape
        words = jax.random.bits(self.make_rng(self.rng_collection), (-(-first // lanes), *rest), jnp.uint32)
        draws = jnp.concatenate([(words >> (width * i)) & ((1 << width) - 1) for i in range(lanes)])[:first]
        keep = (draws < jnp.uint32(threshold)).reshape(x.shape)
        return lax.select(keep, x / jnp.asarray(threshold / (1 << width), x.dtype), jnp.zeros_like(x))


class BatchNorm(nn.Module):
    """`nn.BatchNorm` over the last axis with the batch variance taken in one pass, shifted by the
    running mean so that it stays as accurate as the two-pass one.

    Keras (and flax's `use_fast_variance=False`) reads the activations twice: once for the mean,
    then again for the mean squared distance from it; on CPU the two reductions cost the deep
    CNN's step about a tenth of its time. Here E[d] and E[d^2] of d = x - s are one fused
    reduction; var = E[d^2] - E[d]^2 is exact for any constant s, and its float32 rounding error
    grows with (E[x] - s)^2 / var, so s is the running mean (the same on every device, which
    keeps the cross-device average exact; zero at initialisation, where that is flax's
    `use_fast_variance=True`). The variables are `nn.BatchNorm`'s: params scale and bias,
    batch_stats mean and var, so weights and checkpoints are unchanged.
    """

    use_running_average: bool | None = None
    momentum: float = 0.99
    epsilon: float = 1e-5
    use_bias: bool = True
    use_scale: bool = True
    axis_name: str | None = None
    dtype: Dtype | None = None
    bias_init: Any = nn.initializers.zeros
    scale_init: Any = nn.initializers.ones

    @nn.compact
    def __call__(self, x, use_running_average: bool | None = None):
        use_running_average = nn.merge_param("use_running_average", self.use_running_average, use_running_average)
        features = (x.shape[-1],)
        running_mean = self.variable("batch_stats", "mean", jnp.zeros, features, jnp.float32)
        running_var = self.variable("batch_stats", "var", jnp.ones, features, jnp.float32)
        if use_running_average:
            mean, var = running_mean.value, running_var.value
        else:
            shift = lax.stop_gradient(running_mean.value)
            d = jnp.asarray(x, jnp.float32) - shift
            moments = (d.mean(range(x.ndim - 1)), (d * d).mean(range(x.ndim - 1)))
            if self.axis_name is not None and not self.is_initializing():
                moments = lax.pmean(moments, self.axis_name)
            mean, var = shift + moments[0], jnp.maximum(0.0, moments[1] - moments[0] * moments[0])
            if not self.is_initializing():
                running_mean.value = self.momentum * running_mean.value + (1 - self.momentum) * mean
                running_var.value = self.momentum * running_var.value + (1 - self.momentum) * var
        mul = lax.rsqrt(var + self.epsilon)
        if self.use_scale:
            mul = mul * self.param("scale", self.scale_init, features, jnp.float32)
        y = (x - mean) * mul
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, features, jnp.float32)
        return jnp.asarray(y, self.dtype or x.dtype)


def flatten(x):
    """Flatten everything but the batch axis (Keras `Flatten`, channels-last order)."""
    return x.reshape((x.shape[0], -1))
