"""The alternatives to pieces of `jaxvision.models` that the benchmarks time against them.

Each function is a drop-in for one building block (named in its docstring);
`benchmarks/ablations.py` swaps it in inside a worker process and times the real model with
it. RESULTS.md holds the measured effect of each. The models' own versions are
`jaxvision.models.cpu_conv.conv_general_dilated` (XLA's `lax.conv_general_dilated` is its
alternative) and `jaxvision.models.layers.{max_pool2, max_pool_forward, avg_pool3, upsample2}`.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxvision.models import cpu_conv, layers


def max_pool2_reduce_window(x):
    """For `layers.max_pool2`: flax's `nn.max_pool` (XLA `reduce_window`), what the models used
    before; its gradient is XLA's `select_and_scatter`."""
    return nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")


def max_pool_reduce_window(x, window, strides):
    """For `layers.max_pool` (InceptionV3's 3x3 / 2 pools): flax's `nn.max_pool`, differentiated
    by XLA's `select_and_scatter`; or for `layers.max_pool_forward` alone, the strided-select
    gradient kept."""
    return nn.max_pool(x, window, strides=strides, padding="VALID")


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def max_pool_selects(x, window, strides):
    """For `layers.max_pool`: its CPU forward and strided-select gradient on every platform
    (the models keep `reduce_window` and `select_and_scatter` off the CPU), to time them on a
    GPU."""
    return functools.reduce(jnp.maximum, layers.window_views(x, window, strides))


def _max_pool_selects_fwd(x, window, strides):
    y = max_pool_selects(x, window, strides)
    return y, (x, y)


def _max_pool_selects_bwd(window, strides, res, g):
    return (layers.max_pool_grad_by_selects(window, strides, *res, g),)


max_pool_selects.defvjp(_max_pool_selects_fwd, _max_pool_selects_bwd)


def avg_pool3_reduce_window(x):
    """For `layers.avg_pool3`: flax's `nn.avg_pool` (XLA `reduce_window`, padding excluded from
    the counts), differentiated by XLA."""
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding="SAME", count_include_pad=False).astype(x.dtype)


def max_pool2_reshape(x):
    """For `layers.max_pool2`: a reshape + `max` over the window axes; its gradient is a
    reduction that XLA:CPU runs slowly (the models take the elementwise maximum of corners)."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def upsample2_repeat(x):
    """For `layers.upsample2`: two `jnp.repeat`s, what the models used before; XLA:CPU
    differentiates them with a slow reduction."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def upsample2_broadcast(x):
    """For `layers.upsample2`: one broadcast + reshape, differentiated by XLA (a reduction)."""
    b, h, w, c = x.shape
    return jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c)).reshape(b, 2 * h, 2 * w, c)


def upsample2_resize(x):
    """For `layers.upsample2`: `jax.image.resize(..., 'nearest')`, the usual first choice."""
    b, h, w, c = x.shape
    return jax.image.resize(x, (b, 2 * h, 2 * w, c), "nearest")


def lowering_im2col(w_shape, strides, padding) -> dict[str, str]:
    """For `cpu_conv.lowering`: the rules of 1ce09d5, decided against XLA's YNNPACK convolutions
    (XLA:CPU's default then): im2col + matmul forwards for windows of at most 32 values, 1x1,
    strided and 'VALID' convolutions (the transpose of im2col as the input gradient of the first
    two), col2im for at most 4 output channels, and every kernel gradient as one matmul."""
    kh, kw, cin, cout = w_shape
    if kh * kw * cin <= 32 or (kh, kw, strides) == (1, 1, (1, 1)):
        forward, input_grad = "im2col", "transpose"
    elif cout <= 4 and strides == (1, 1):
        forward, input_grad = "col2im", "transpose"
    elif strides != (1, 1) or not any(map(any, padding)):
        forward, input_grad = "im2col", "xla"
    else:
        forward, input_grad = "xla", "xla"
    return {"forward": forward, "input grad": input_grad, "kernel grad": "matmul"}


def onednn_passes_matmul_1x1(w_shape, strides, padding) -> dict[str, str]:
    """For `cpu_conv.onednn_passes`: oneDNN only where `cpu_conv.lowering` picks XLA's kernel,
    the 1x1 kernel gradients kept as matmuls (JAXVISION_ONEDNN=1 until 2026-12-07)."""
    return {p: "onednn" if k == "xla" else k for p, k in cpu_conv.lowering(w_shape, strides, padding).items()}
