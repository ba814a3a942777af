"""A prototype: oneDNN's convolutions called from XLA:CPU (`jax.ffi`), to measure what issue
#24's optional oneDNN path would gain inside a real step before anyone builds it into the
models.

`conv.cc` is compiled on first use against the headers of the installed jaxlib and of the
registry's CPU-only oneDNN (`onednn-cpu-gomp` and `onednn-devel-cpu-gomp`, the bench extra;
39 MB, GNU OpenMP threads), into `JAXVISION_CACHE` (default ~/.cache/jaxvision). `conv(x, w,
strides, padding)` is an NHWC/HWIO float32 convolution whose forward, input gradient and kernel
gradient are each one oneDNN primitive; `cpu_conv_with_onednn` is `models.cpu_conv`'s
per-pass choice with oneDNN in place of XLA's own kernel, the `conv='onednn'` variant of
benchmarks/ablations.py.
"""

from __future__ import annotations

import ctypes
import functools
import os
import subprocess
import sys
import sysconfig

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.models import cpu_conv

_CPU_CONV = cpu_conv._cpu_conv  # before the ablation replaces it with cpu_conv_with_onednn
SOURCE = os.path.join(os.path.dirname(__file__), "conv.cc")
HANDLERS = {"forward": "OnednnConvForward", "input grad": "OnednnConvInputGrad", "kernel grad": "OnednnConvKernelGrad"}


def _prefix() -> str:
    """Where pip put the oneDNN wheels' lib/ and include/ (the environment's data directory)."""
    return sysconfig.get_paths()["data"]


def library_path() -> str:
    cache = os.environ.get("JAXVISION_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "jaxvision"))
    return os.path.join(cache, "onednn", f"libonednn_conv-{jax.__version__}.so")


def build() -> str:
    """Compiles conv.cc unless an up-to-date build exists; returns the library's path."""
    out = library_path()
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(SOURCE):
        return out
    prefix = _prefix()
    if not os.path.exists(os.path.join(prefix, "include", "oneapi", "dnnl", "dnnl.hpp")):
        sys.exit(
            f"oneDNN's headers are not in {prefix}/include: install the bench extra "
            "(`pip install -e .[bench]`, which `./launch.sh bench` does) to get onednn-cpu-gomp."
        )
    os.makedirs(os.path.dirname(out), exist_ok=True)
    lib = os.path.join(prefix, "lib")
    command = ["g++", "-O2", "-std=c++17", "-shared", "-fPIC", "-w", f"-I{jax.ffi.include_dir()}"]
    command += [f"-I{prefix}/include", SOURCE, f"-L{lib}", "-ldnnl", f"-Wl,-rpath,{lib}", "-o", f"{out}.{os.getpid()}"]
    subprocess.run(command, check=True)
    os.replace(f"{out}.{os.getpid()}", out)  # workers that build at once each write their own
    return out


@functools.cache
def register() -> None:
    library = ctypes.CDLL(build())
    for symbol in HANDLERS.values():
        jax.ffi.register_ffi_target(symbol, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")


def _attrs(strides, padding) -> dict:
    (sh, sw), ((pt, pb), (pl, pr)) = strides, padding
    return {
        k: np.int64(v)
        for k, v in dict(stride_h=sh, stride_w=sw, pad_top=pt, pad_bottom=pb, pad_left=pl, pad_right=pr).items()
    }


def forward(x, w, strides, padding):
    register()
    (sh, sw), ((pt, pb), (pl, pr)) = strides, padding
    kh, kw, _, cout = w.shape
    ho = (x.shape[1] + pt + pb - kh) // sh + 1
    wo = (x.shape[2] + pl + pr - kw) // sw + 1
    out = jax.ShapeDtypeStruct((x.shape[0], ho, wo, cout), jnp.float32)
    return jax.ffi.ffi_call(HANDLERS["forward"], out)(x, w, **_attrs(strides, padding))


def input_grad(g, w, x_shape, strides, padding):
    register()
    out = jax.ShapeDtypeStruct(x_shape, jnp.float32)
    return jax.ffi.ffi_call(HANDLERS["input grad"], out)(g, w, **_attrs(strides, padding))


def kernel_grad(x, g, w_shape, strides, padding):
    register()
    out = jax.ShapeDtypeStruct(w_shape, jnp.float32)
    return jax.ffi.ffi_call(HANDLERS["kernel grad"], out)(x, g, **_attrs(strides, padding))


@functools.cache
def cpu_conv_with_onednn(strides, padding, precision, w_shape):
    """`models.cpu_conv._cpu_conv`'s signature: its rewrites where `cpu_conv.lowering` picks one,
    oneDNN where it picks XLA's kernel."""
    kinds = cpu_conv.lowering(w_shape, strides, padding)
    rewritten = _CPU_CONV(strides, padding, precision, w_shape)

    @jax.custom_vjp
    def conv(x, w):
        return forward(x, w, strides, padding) if kinds["forward"] == "xla" else rewritten(x, w)

    def fwd(x, w):
        return conv(x, w), (x, w)

    def bwd(res, g):
        x, w = res
        dx, dw = jax.vjp(rewritten, x, w)[1](g)  # XLA drops the passes not used below
        if kinds["input grad"] == "xla":
            dx = input_grad(g, w, x.shape, strides, padding)
        if kinds["kernel grad"] == "xla":
            dw = kernel_grad(x, g, w.shape, strides, padding)
        return dx, dw

    conv.defvjp(fwd, bwd)
    return conv
