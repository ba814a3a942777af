"""The machine's measured matmul peak, against which each step's achieved FLOP/s is read.

    python -m benchmarks.flops      prints {"jax": GFLOP/s, "torch": GFLOP/s} as JSON

The peak is the best of XLA's and PyTorch's (MKL on CPU, cuBLAS on GPU) float32 matrix
products, median of repeats, each framework in its own process. A step's FLOPs are counted
from its jaxpr (`count`): 2 x multiply-adds of every convolution and matrix product, the work
any framework must do; XLA's own cost analysis misses cuDNN convolutions on GPU.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time


def _jaxprs(value):
    """The sub-jaxprs held by an equation parameter (pmap, jit, custom_vjp, scan, cond...)."""
    import jax

    if isinstance(value, jax.extend.core.ClosedJaxpr):
        yield value.jaxpr
    elif isinstance(value, jax.extend.core.Jaxpr):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _jaxprs(v)


def _jaxpr_flops(jaxpr) -> float:
    import math

    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            lhs, rhs = (v.aval for v in eqn.invars)
            out = eqn.outvars[0].aval
            dims = eqn.params["dimension_numbers"]
            window = math.prod(rhs.shape[d] for d in dims.rhs_spec[2:])
            in_features = rhs.shape[dims.rhs_spec[1]]
            total += 2.0 * math.prod(out.shape) * window * in_features
        elif name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval
            total += 2.0 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs.shape[d] for d in contract)
        if name == "cond":  # one branch runs (lax.platform_dependent: one per platform)
            total += max(_jaxpr_flops(b.jaxpr) for b in eqn.params["branches"])
            continue
        copies = eqn.params["mesh"].size if name == "shard_map" else 1  # pmap: per-device body
        for value in eqn.params.values():
            total += copies * sum(_jaxpr_flops(sub) for sub in _jaxprs(value))
    return total


def count(fn, *args) -> float:
    """FLOPs of one call of `fn(*args)`, all devices of a pmap together."""
    import jax

    return _jaxpr_flops(jax.make_jaxpr(fn)(*args).jaxpr)


def median_seconds(fn, repeats: int = 5) -> float:
    """The median wall-clock seconds of `repeats` calls of `fn()`, after one call to warm up (layers.py times
    its ops with it too)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def jax_matmul_gflops(n: int, dtype: str = "float32") -> float:
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
    dot = jax.jit(lambda a: a @ a)
    return 2 * n**3 / median_seconds(lambda: dot(a).block_until_ready()) / 1e9


def torch_matmul_gflops(n: int, dtype: str = "float32") -> float:
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.cpu_count())))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.randn(n, n, device=device).to(getattr(torch, dtype))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return 2 * n**3 / median_seconds(lambda: (a @ a, sync())) / 1e9


def matmul_peak(n: int, threads: int, dtypes=("float32",)) -> dict[str, float]:
    """{'framework dtype': GFLOP/s} of an n x n matmul, each measured in a fresh process;
    frameworks missing are left out. float32 runs at each framework's default precision (TF32
    on recent NVIDIA GPUs)."""
    from benchmarks.throughput import run_child  # not at the top: layers.py's PyTorch process imports this file

    out = {}
    for name, dtype in ((name, dtype) for dtype in dtypes for name in ("jax", "torch")):
        code = f"from benchmarks.flops import {name}_matmul_gflops as f; print(f({n}, {dtype!r}))"
        proc = run_child("-c", code, BENCH_THREADS=str(threads))
        if proc.returncode == 0:
            out[f"{name} {dtype}"] = float(proc.stdout.split()[-1])
    return out


if __name__ == "__main__":
    print(json.dumps(matmul_peak(int(sys.argv[1]) if len(sys.argv) > 1 else 2048, os.cpu_count())))
