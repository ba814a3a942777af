"""The machine's measured matmul peak, against which each step's achieved FLOP/s is read.

    python -m benchmarks.flops      prints {"jax": GFLOP/s, "torch": GFLOP/s} as JSON

The peak is the best of XLA's and PyTorch's (MKL on CPU, cuBLAS on GPU) float32 matrix
products, median of repeats, each framework in its own process. A step's FLOPs come from
XLA's cost analysis of the lowered step (jaxvision_side.build_case).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _time(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def jax_matmul_gflops(n: int) -> float:
    import jax
    import jax.numpy as jnp
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    dot = jax.jit(lambda a: a @ a)
    return 2 * n**3 / _time(lambda: dot(a).block_until_ready()) / 1e9


def torch_matmul_gflops(n: int) -> float:
    import torch
    torch.set_num_threads(int(os.environ.get('BENCH_THREADS', os.cpu_count())))
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    a = torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    return 2 * n**3 / _time(lambda: (a @ a, sync())) / 1e9


def matmul_peak(n: int, threads: int) -> dict[str, float]:
    """{framework: GFLOP/s}, each measured in a fresh process; frameworks missing are left out."""
    out = {}
    for name in ('jax', 'torch'):
        code = f'from benchmarks.flops import {name}_matmul_gflops as f; print(f({n}))'
        proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=ROOT, BENCH_THREADS=str(threads)))
        if proc.returncode == 0:
            out[name] = float(proc.stdout.split()[-1])
    return out


if __name__ == '__main__':
    print(json.dumps(matmul_peak(int(sys.argv[1]) if len(sys.argv) > 1 else 2048, os.cpu_count())))
