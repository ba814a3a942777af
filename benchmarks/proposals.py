"""Changes to jaxvision's models that the benchmarks measure before they are made.

Each function here is a drop-in for one piece of `jaxvision.models` (named in its docstring);
`benchmarks/ablations.py` swaps it in inside a worker process and times the real model with
and without it. RESULTS.md holds the measured effect of each.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

_NHWC = lax.ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, precision=None, **kw):
    """`lax.conv_general_dilated` whose kernel gradient on CPU is a sum of plain matmuls.

    For `flax.linen.Conv(..., conv_general_dilated=conv_general_dilated)` in
    `jaxvision/models/layers.py` (conv3x3) and `inception_v3.py` (conv2d_bn).

    Why: XLA:CPU lowers the kernel gradient of a convolution (the "backward filter" conv,
    whose window is the whole output-gradient image) to a generic Eigen contraction that runs
    5-7x slower than the forward convolution. Written as one [Cin, B*H*W] x [B*H*W, Cout]
    matmul per kernel tap, it runs at matmul speed. Forward and input gradient are XLA's own;
    other platforms (GPU/TPU, whose libraries have a fast backward-filter kernel) keep XLA's.
    """
    plain = functools.partial(lax.conv_general_dilated, window_strides=window_strides,
                              padding=padding, lhs_dilation=lhs_dilation,
                              rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                              feature_group_count=feature_group_count, precision=precision, **kw)
    dilated = any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
    dims = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    if dilated or feature_group_count != 1 or kw or dims != _NHWC or lhs.ndim != 4:
        return plain(lhs, rhs)
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
    conv = _tap_grad_conv(tuple(window_strides), tuple(map(tuple, padding)), precision)
    return lax.platform_dependent(lhs, rhs, cpu=conv, default=plain)


def _tap_grad_conv(strides, padding, precision):
    def forward(x, w):
        return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_NHWC,
                                        precision=precision)

    @jax.custom_vjp
    def conv(x, w):
        return forward(x, w)

    def fwd(x, w):
        return forward(x, w), (x, w)

    def bwd(res, g):
        x, w = res
        input_grad = jax.linear_transpose(lambda x: forward(x, w), x)(g)[0]
        return input_grad, _kernel_grad(x, g, w.shape, strides, padding, precision)

    conv.defvjp(fwd, bwd)
    return conv


def _kernel_grad(x, g, kernel_shape, strides, padding, precision):
    """dL/dw[i, j] = sum over (b, h, w) of x_padded[b, s*h + i, s*w + j, :] outer g[b, h, w, :].

    Each tap is one 2-D matmul [Cin, B*H*W] x [B*H*W, Cout]: flattening (b, h, w) into one
    contracting axis first ran faster on XLA:CPU than a 3-axis einsum.
    """
    kh, kw, cin, cout = kernel_shape
    (sh, sw), (ho, wo) = strides, g.shape[1:3]
    xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    g2 = g.reshape(-1, cout)
    contract_rows = (((0,), (0,)), ((), ()))
    taps = [lax.dot_general(
        lax.slice(xp, (0, i, j, 0), (xp.shape[0], i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, cin),
                  (1, sh, sw, 1)).reshape(-1, cin),
        g2, contract_rows, precision=precision, preferred_element_type=jnp.float32)
        for i in range(kh) for j in range(kw)]
    return jnp.stack(taps).reshape(kernel_shape).astype(x.dtype)


def upsample2_broadcast(x):
    """For `jaxvision/models/layers.py:upsample2`: nearest 2x upsampling as broadcast + reshape.

    One broadcast + reshape instead of two `jnp.repeat`s, each of which materialises its
    result; the gradient is a single reshape + sum over the 2x2 copies.
    """
    b, h, w, c = x.shape
    return jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c)).reshape(b, 2 * h, 2 * w, c)


def upsample2_resize(x):
    """`jax.image.resize(..., 'nearest')`, the usual first choice, for comparison."""
    b, h, w, c = x.shape
    return jax.image.resize(x, (b, 2 * h, 2 * w, c), 'nearest')


def max_pool2_reshape(x):
    """For `jaxvision/models/layers.py:max_pool2`: 2x2/stride-2 max pool as reshape + max.

    XLA differentiates `reduce_window` max with `select_and_scatter`, a slow scalar loop on
    CPU; the gradient of a reshaped `max` is an elementwise compare and select instead. On a
    tie inside a window it splits the gradient between the maxima (after a ReLU, ties are
    zeros, whose gradient the ReLU zeroes anyway). Inputs with odd sizes drop the last
    row/column, as 'VALID' pooling does.
    """
    b, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
