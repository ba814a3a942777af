"""A convolution whose kernel gradient on CPU is a sum of plain matmuls.

XLA:CPU computes a convolution's kernel gradient as another convolution whose window is the
whole output-gradient image; it runs about 5x slower than the forward convolution of the
same FLOPs and was the largest cost of every paper-B training step on CPU (benchmarks/
RESULTS.md). Written as one [Cin, B*H*W] x [B*H*W, Cout] matmul per kernel tap it runs at
matmul speed. Forward and input gradient stay XLA's own, and GPUs/TPUs, whose libraries have
a fast kernel-gradient convolution, keep XLA's path entirely (`lax.platform_dependent`).

Parameters, names and checkpoints are unchanged; only the order of a float32 sum differs.
The price is host memory: XLA keeps the kernel's shifted input slices alive together.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

_NHWC = lax.ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, precision=None, **kw):
    """`lax.conv_general_dilated`, for `flax.linen.Conv(conv_general_dilated=...)`.

    Dilated, grouped and non-NHWC/HWIO convolutions fall back to XLA's on every platform.
    """
    plain = functools.partial(lax.conv_general_dilated, window_strides=window_strides,
                              padding=padding, lhs_dilation=lhs_dilation,
                              rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                              feature_group_count=feature_group_count, precision=precision, **kw)
    dilated = any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
    if lhs.ndim != 4 or dilated or feature_group_count != 1 or kw:
        return plain(lhs, rhs)
    if lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) != _NHWC:
        return plain(lhs, rhs)
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
    conv = _tap_grad_conv(tuple(window_strides), tuple(map(tuple, padding)), precision)
    return lax.platform_dependent(lhs, rhs, cpu=conv, default=plain)


@functools.cache
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
        return input_grad, kernel_grad(x, g, w.shape, strides, padding, precision).astype(w.dtype)

    conv.defvjp(fwd, bwd)
    return conv


def kernel_grad(x, g, kernel_shape, strides, padding, precision=None):
    """dL/dw[i, j] = sum over (b, h, w) of x_padded[b, s*h + i, s*w + j, :] outer g[b, h, w, :].

    Flattening (b, h, w) into one contracting axis ran faster on XLA:CPU than a 3-axis einsum.
    """
    kh, kw, cin, cout = kernel_shape
    (sh, sw), (ho, wo) = strides, g.shape[1:3]
    xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    g2 = g.reshape(-1, cout)
    contract_rows = (((0,), (0,)), ((), ()))
    accumulate = jnp.promote_types(x.dtype, jnp.float32)   # bf16 sums in float32, f64 stays f64
    taps = [lax.dot_general(
        lax.slice(xp, (0, i, j, 0), (xp.shape[0], i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, cin),
                  (1, sh, sw, 1)).reshape(-1, cin),
        g2, contract_rows, precision=precision, preferred_element_type=accumulate)
        for i in range(kh) for j in range(kw)]
    return jnp.stack(taps).reshape(kernel_shape)
