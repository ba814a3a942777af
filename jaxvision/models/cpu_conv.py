"""Convolutions lowered for XLA:CPU as matmuls where XLA's own convolution is slower.

Which pass of which convolution is rewritten was decided shape by shape
(`benchmarks/conv_shapes.py`, benchmarks/RESULTS.md "Convolutions shape by shape"), against
XLA:CPU's Eigen convolutions, which jaxvision/cpu_flags.py chooses over YNNPACK's:

* the forward of a convolution with **few output channels** (the last layer: 1 or 3): one
  matmul of the input with every tap's kernel at once, then the kh*kw shifted results summed
  ("col2im"); its input gradient, by transposition, is one matmul too;
* the **kernel gradient** of that layer, of 1x1 convolutions and of first layers with many
  outputs (windows of at most 32 values, 3x3x1 or 3x3x3, and at least 128 channels): one
  [kh*kw*C, B*H*W] x [B*H*W, C'] matmul against the shifted copies ("im2col") of whichever of
  input and output gradient has fewer channels.

Every other pass is XLA's: Eigen's forward, input and kernel gradients beat im2col on all of
InceptionV3's 3x3, 5x5, 1x7, strided and 'VALID' layers (im2col had been chosen against
YNNPACK, then XLA:CPU's default). So is every pass on other platforms (GPUs and TPUs have fast
convolution libraries; `lax.platform_dependent`). Parameters, names and checkpoints are
unchanged; only the order of float32 sums differs.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxvision.models import onednn_conv

_NHWC = lax.ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))
# A kernel gradient as one matmul copies kh*kw*Cin values per output pixel: cheaper than XLA's
# only for 1x1 convolutions (no copy at all) and for windows of few values with many outputs
# (3x3x1 -> 256: 4.4x Eigen's speed; 3x3x3 -> 32: 0.42x).
_IM2COL_MAX_WINDOW = 32
_MATMUL_MIN_OUT = 128
# col2im sums kh*kw shifted maps of Cout channels: cheap only for few output channels.
# Measured at the segmenter's 1-channel logits: 3.8x XLA's (Eigen's) forward.
_COL2IM_MAX_OUT = 4
_TN = (((0,), (0,)), ((), ()))  # contract the rows of both: A^T B


def conv_general_dilated(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    precision=None,
    **kw,
):
    """`lax.conv_general_dilated`, for `flax.linen.Conv(conv_general_dilated=...)`.

    Dilated, grouped and non-NHWC/HWIO convolutions fall back to XLA's on every platform.
    """
    plain = functools.partial(
        lax.conv_general_dilated,
        window_strides=window_strides,
        padding=padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        precision=precision,
        **kw,
    )
    dilated = any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
    if lhs.ndim != 4 or dilated or feature_group_count != 1 or kw:
        return plain(lhs, rhs)
    if lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) != _NHWC:
        return plain(lhs, rhs)
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
    float32 = lhs.dtype == rhs.dtype == jnp.float32  # oneDNN's kernels here are float32 only
    onednn = float32 and onednn_conv.enabled()
    conv = _cpu_conv(tuple(window_strides), tuple(map(tuple, padding)), precision, tuple(rhs.shape), onednn)
    return lax.platform_dependent(lhs, rhs, cpu=conv, default=plain)


def lowering(w_shape, strides, padding) -> dict[str, str]:
    """Which kernel computes each pass of a convolution on CPU: 'xla' (XLA's own, Eigen under
    jaxvision's flags) or the rewrite named ('col2im' forward, the 'transpose' of the rewritten
    forward for the input gradient, one 'matmul' for the kernel gradient)."""
    kh, kw, cin, cout = w_shape
    few_outputs = cout <= _COL2IM_MAX_OUT and strides == (1, 1)
    first_layer = kh * kw * cin <= _IM2COL_MAX_WINDOW and cout >= _MATMUL_MIN_OUT
    small_window = (first_layer or (kh, kw) == (1, 1)) and strides == (1, 1)
    return {
        "forward": "col2im" if few_outputs else "xla",
        "input grad": "transpose" if few_outputs else "xla",
        "kernel grad": "matmul" if few_outputs or small_window else "xla",
    }


def onednn_passes(w_shape, strides, padding) -> dict[str, str]:
    """`lowering` with oneDNN ('onednn') for every pass it leaves to XLA, and for the kernel
    gradients of 1x1 convolutions: oneDNN's 1x1 backward-weights kernel reads the input in
    place and beats the matmul (InceptionV3's step 1.05-1.11x, benchmarks/RESULTS.md "oneDNN's
    convolutions"). The first and last layers' rewrites beat oneDNN and stay."""
    kinds = lowering(w_shape, strides, padding)
    one_by_one = w_shape[:2] == (1, 1) and kinds["forward"] == "xla"
    return {p: "onednn" if k == "xla" or (p == "kernel grad" and one_by_one) else k for p, k in kinds.items()}


@functools.cache
def _cpu_conv(strides, padding, precision, w_shape, onednn=False):
    """The convolution with each pass as `lowering` picks it; with `onednn`, oneDNN's kernel
    (models/onednn_conv.py) wherever that is XLA's, and for 1x1 kernel gradients."""

    def xla(x, w):
        return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_NHWC, precision=precision)

    def col2im(x, w):
        return _col2im_conv(x, w, padding, precision)

    def im2col(x, w):
        return _im2col_conv(x, w, strides, padding, precision)

    def onednn_forward(x, w):
        return onednn_conv.forward(x, w, strides, padding)

    kinds = (onednn_passes if onednn else lowering)(w_shape, strides, padding)
    if set(kinds.values()) == {"xla"}:
        return xla
    forward = {"col2im": col2im, "im2col": im2col, "xla": xla, "onednn": onednn_forward}[kinds["forward"]]
    transposed = forward if kinds["input grad"] == "transpose" else xla

    @jax.custom_vjp
    def conv(x, w):
        return forward(x, w)

    def fwd(x, w):
        return forward(x, w), (x, w)

    def bwd(res, g):
        x, w = res
        if kinds["input grad"] == "onednn":
            input_grad = onednn_conv.input_grad(g, w, x.shape, strides, padding)
        else:
            input_grad = jax.linear_transpose(lambda x: transposed(x, w), x)(g)[0]
        if kinds["kernel grad"] == "matmul":
            w_grad = kernel_grad(x, g, w.shape, strides, padding, precision)
        elif kinds["kernel grad"] == "onednn":
            w_grad = onednn_conv.kernel_grad(x, g, w.shape, strides, padding)
        else:
            w_grad = jax.vjp(lambda w: xla(x, w), w)[1](g)[0]
        return input_grad, w_grad.astype(w.dtype)

    conv.defvjp(fwd, bwd)
    return conv


def _shifted(a, window, strides, padding, out_hw):
    """The kh*kw windows' shifted views of `a` (padded), each [B, Ho, Wo, C], tap-major."""
    (kh, kw), (sh, sw), (ho, wo) = window, strides, out_hw
    ap = lax.pad(a, jnp.zeros((), a.dtype), ((0, 0, 0), (*padding[0], 0), (*padding[1], 0), (0, 0, 0)))
    return [
        lax.slice(
            ap, (0, i, j, 0), (a.shape[0], i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, a.shape[3]), (1, sh, sw, 1)
        )
        for i in range(kh)
        for j in range(kw)
    ]


def _matmul(a, b, precision, dims=(((1,), (0,)), ((), ()))):
    accumulate = jnp.promote_types(a.dtype, jnp.float32)  # bf16 sums in float32, f64 stays f64
    return lax.dot_general(a, b, dims, precision=precision, preferred_element_type=accumulate)


def _out_hw(x_hw, window, strides, padding):
    return tuple((n + lo + hi - k) // s + 1 for n, k, s, (lo, hi) in zip(x_hw, window, strides, padding))


def _im2col_conv(x, w, strides, padding, precision):
    kh, kw, cin, cout = w.shape
    ho, wo = _out_hw(x.shape[1:3], (kh, kw), strides, padding)
    cols = jnp.concatenate(_shifted(x, (kh, kw), strides, padding, (ho, wo)), axis=-1)
    y = _matmul(cols.reshape(-1, kh * kw * cin), w.reshape(kh * kw * cin, cout), precision)
    return y.reshape(x.shape[0], ho, wo, cout).astype(x.dtype)


def _col2im_conv(x, w, padding, precision):
    """Stride 1: y[b, h, w] = sum over taps (i, j) of (x_padded @ w[i, j])[b, h + i, w + j]."""
    b, h, wd, cin = x.shape
    kh, kw, _, cout = w.shape
    ho, wo = _out_hw((h, wd), (kh, kw), (1, 1), padding)
    per_tap = _matmul(x.reshape(-1, cin), w.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout), precision)
    per_tap = per_tap.reshape(b, h, wd, kh * kw * cout)
    shifted = _shifted(per_tap, (kh, kw), (1, 1), padding, (ho, wo))
    y = sum(s[..., t * cout : (t + 1) * cout] for t, s in enumerate(shifted))
    return y.astype(x.dtype)


def kernel_grad(x, g, kernel_shape, strides, padding, precision=None):
    """dL/dw[i, j] = sum over (b, h, w) of x_padded[b, s*h + i, s*w + j, :] outer g[b, h, w, :].

    One matmul of the unshifted operand against the concatenated shifted copies of the other,
    whichever of x and g has fewer channels: the copies, not the multiplications, were the
    larger cost, and one matmul reads the unshifted operand once instead of kh*kw times.
    """
    kh, kw, cin, cout = kernel_shape
    b, ho, wo, _ = g.shape
    if strides == (1, 1) and cout < cin:
        # With q = h + i - top: the sum over x[b, q] g[b, q + top - i], g zero outside its image.
        (top, _), (left, _) = padding
        h, w = x.shape[1:3]
        flipped = ((kh - 1 - top, h + top - ho), (kw - 1 - left, w + left - wo))
        cols = jnp.concatenate(_shifted(g, (kh, kw), (1, 1), flipped, (h, w))[::-1], axis=-1)
        grad = _matmul(x.reshape(-1, cin), cols.reshape(-1, kh * kw * cout), precision, _TN)
        return grad.reshape(cin, kh, kw, cout).transpose(1, 2, 0, 3)
    cols = jnp.concatenate(_shifted(x, (kh, kw), strides, padding, (ho, wo)), axis=-1)
    grad = _matmul(cols.reshape(-1, kh * kw * cin), g.reshape(-1, cout), precision, _TN)
    return grad.reshape(kernel_shape)
