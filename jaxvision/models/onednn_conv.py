"""oneDNN's convolutions on CPU, an opt-in path: `JAXVISION_ONEDNN=1`.

With it set, every convolution pass that `cpu_conv.lowering` leaves to XLA (Eigen's kernels
under jaxvision's flags), and the kernel gradient of 1x1 convolutions, is one oneDNN primitive
instead, called as an XLA custom call (`jax.ffi`); cpu_conv's other matmul rewrites (the first
and last layers') stay where they are, because they beat oneDNN there too
(benchmarks/RESULTS.md "oneDNN's convolutions"). oneDNN comes from the registry's CPU-only
wheels (`pip install -e .[onednn]`, which `launch.sh` does when the variable is set: 39 MB,
GNU OpenMP threads); `onednn_conv.cc` is compiled with g++ on first use against them and the
installed jaxlib's FFI headers, into `JAXVISION_CACHE` (default ~/.cache/jaxvision).

It is not the default, though it is faster on the CPUs measured: it changes the order of
float32 sums in every convolution, so a run with it is not bit-identical to the published runs,
which were computed without it. Without the wheels or a compiler, a warning says so and
XLA's convolutions run. GPUs and TPUs never see it (`lax.platform_dependent` in cpu_conv).
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
import sysconfig
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxvision import cache

SOURCE = os.path.join(os.path.dirname(__file__), "onednn_conv.cc")
HANDLERS = {"forward": "OnednnConvForward", "input grad": "OnednnConvInputGrad", "kernel grad": "OnednnConvKernelGrad"}
SWITCH = "JAXVISION_ONEDNN"


def requested() -> bool:
    return os.environ.get(SWITCH, "") not in ("", "0")


def _prefix() -> str:
    """Where pip put the oneDNN wheels' lib/ and include/ (the environment's data directory)."""
    return sysconfig.get_paths()["data"]


def missing() -> str | None:
    """What stops the oneDNN path from being built here, in one sentence; None if nothing."""
    if not os.path.exists(os.path.join(_prefix(), "include", "oneapi", "dnnl", "dnnl.hpp")):
        return f"oneDNN is not installed in {_prefix()}: run `pip install -e .[onednn]` (launch.sh does it)"
    if not shutil.which("g++"):
        return "g++ is not on PATH: install a C++ compiler (Debian: apt install g++)"
    return None


def library_path() -> str:
    return os.path.join(cache.cache_dir(), "onednn", f"libonednn_conv-{jax.__version__}.so")


def build() -> str:
    """Compiles onednn_conv.cc unless an up-to-date build exists; returns the library's path."""
    out = library_path()
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(SOURCE):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    prefix, tmp = _prefix(), f"{out}.{os.getpid()}"  # processes that build at once each write their own
    lib = os.path.join(prefix, "lib")
    command = ["g++", "-O2", "-std=c++17", "-shared", "-fPIC", "-w", f"-I{jax.ffi.include_dir()}"]
    command += [f"-I{prefix}/include", SOURCE, f"-L{lib}", "-ldnnl", f"-Wl,-rpath,{lib}", "-o", tmp]
    subprocess.run(command, check=True, capture_output=True, text=True)
    os.replace(tmp, out)
    return out


@functools.cache
def _register() -> None:
    """Builds and loads the library and registers its handlers, once a process (XLA refuses a
    second registration of a name)."""
    library = ctypes.CDLL(build())
    for symbol in HANDLERS.values():
        jax.ffi.register_ffi_target(symbol, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu")


@functools.cache
def enabled() -> bool:
    """Whether this process runs its CPU convolutions in oneDNN: asked for, built and registered."""
    if not requested():
        return False
    problem = missing()
    if problem is None:
        try:
            _register()
        except (OSError, subprocess.CalledProcessError) as e:
            first = (getattr(e, "stderr", "") or str(e)).strip().splitlines()[:1]  # one line, not g++'s page
            problem = f"building {SOURCE} failed ({''.join(first)})"
    if problem:
        warnings.warn(f"{SWITCH} is set, but {problem}; XLA's convolutions run instead.", stacklevel=2)
        return False
    return True


def _attrs(strides, padding) -> dict:
    (sh, sw), ((pt, pb), (pl, pr)) = strides, padding
    names = dict(stride_h=sh, stride_w=sw, pad_top=pt, pad_bottom=pb, pad_left=pl, pad_right=pr)
    return {k: np.int64(v) for k, v in names.items()}


def forward(x, w, strides, padding):
    """NHWC `x` convolved with HWIO `w` (explicit `padding` ((top, bottom), (left, right)))."""
    shape = lax.conv_general_shape_tuple(x.shape, w.shape, strides, padding, ("NHWC", "HWIO", "NHWC"))
    out = jax.ShapeDtypeStruct(shape, jnp.float32)
    return jax.ffi.ffi_call(HANDLERS["forward"], out)(x, w, **_attrs(strides, padding))


def input_grad(g, w, x_shape, strides, padding):
    out = jax.ShapeDtypeStruct(x_shape, jnp.float32)
    return jax.ffi.ffi_call(HANDLERS["input grad"], out)(g, w, **_attrs(strides, padding))


def kernel_grad(x, g, w_shape, strides, padding):
    out = jax.ShapeDtypeStruct(w_shape, jnp.float32)
    return jax.ffi.ffi_call(HANDLERS["kernel grad"], out)(x, g, **_attrs(strides, padding))
