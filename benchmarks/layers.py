"""Where the CPU time of the autoencoder's step goes, op by op, in XLA and in PyTorch.

    python -m benchmarks.layers jax|torch BATCH      prints JSON {op: milliseconds}

The ops are the autoencoder's heaviest, at its shapes: the 64x64 256->128 3x3 convolution
(forward, input gradient, kernel gradient), 2x2 max pooling of 128x128x256 and nearest 2x
upsampling of 64x64x256 (forward + backward each), in each implementation considered.
run.py's `layers` section runs both frameworks in alternation and reports the medians.
"""

from __future__ import annotations

import json
import os
import statistics
import sys

from benchmarks.flops import median_seconds

CONV = (64, 64, 256, 128)  # H, W, Cin, Cout
POOL = (128, 128, 256)
UP = (64, 64, 256)


def section(batch: int, threads: int, rounds: int = 2) -> str:
    """run.py's `layers` section: both frameworks in alternation, each op's median milliseconds."""
    from benchmarks.machine import available
    from benchmarks.throughput import run_child

    runs = {}
    for _ in range(rounds):  # alternate frameworks, as the other sections do
        for fw in ("jax", "torch"):
            if fw == "torch" and not available("torch"):
                continue
            proc = run_child("-m", "benchmarks.layers", fw, str(batch), BENCH_THREADS=str(threads))
            if proc.returncode == 0:
                for op, ms in json.loads(proc.stdout.splitlines()[-1]).items():
                    runs.setdefault(op, []).append(ms)
    rows = [
        f"\n## The autoencoder's heaviest ops, batch {batch} (ms, median of {rounds} runs)\n",
        "| op | ms |",
        "|---|---:|",
    ]
    rows += [f"| {op} | {statistics.median(ms):.0f} |" for op, ms in runs.items()]
    return "\n".join(rows)


def _ms(fn, repeats: int = 3) -> float:
    return 1e3 * median_seconds(fn, repeats)


def jax_ops(b: int) -> dict[str, float]:
    import jax
    from jax import lax

    from benchmarks import alternatives
    from jaxvision.models import cpu_conv, layers

    h, w, cin, cout = CONV
    k = jax.random.split(jax.random.key(0), 4)
    x, kern = jax.random.normal(k[0], (b, h, w, cin)), jax.random.normal(k[1], (3, 3, cin, cout))
    g = jax.random.normal(k[2], (b, h, w, cout))
    out = {}
    for name, conv in (("XLA", lax.conv_general_dilated), ("jaxvision cpu_conv, as is", cpu_conv.conv_general_dilated)):
        f = lambda x, kern: conv(x, kern, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        fwd = jax.jit(f)
        d_in = jax.jit(lambda x, kern, g: jax.vjp(lambda x: f(x, kern), x)[1](g)[0])
        d_k = jax.jit(lambda x, kern, g: jax.vjp(lambda kern: f(x, kern), kern)[1](g)[0])
        out[f"conv forward ({name})"] = _ms(lambda: fwd(x, kern).block_until_ready())
        out[f"conv input grad ({name})"] = _ms(lambda: d_in(x, kern, g).block_until_ready())
        out[f"conv kernel grad ({name})"] = _ms(lambda: d_k(x, kern, g).block_until_ready())

    def fwd_bwd(op, shape):
        a = jax.random.normal(k[3], (b, *shape))
        # a cotangent of its own: with op(a) as cotangent XLA simplified some backward passes away
        g = jax.random.normal(k[2], jax.eval_shape(op, a).shape)
        f = jax.jit(lambda a, g: jax.vjp(op, a)[1](g)[0])
        return _ms(lambda: f(a, g).block_until_ready())

    out["max pool fwd+bwd (corner maxima, as is)"] = fwd_bwd(layers.max_pool2, POOL)
    out["max pool fwd+bwd (reshape + max)"] = fwd_bwd(alternatives.max_pool2_reshape, POOL)
    out["max pool fwd+bwd (nn.max_pool)"] = fwd_bwd(alternatives.max_pool2_reduce_window, POOL)
    out["upsample fwd+bwd (custom gradient, as is)"] = fwd_bwd(layers.upsample2, UP)
    out["upsample fwd+bwd (jnp.repeat)"] = fwd_bwd(alternatives.upsample2_repeat, UP)
    out["upsample fwd+bwd (broadcast + reshape)"] = fwd_bwd(alternatives.upsample2_broadcast, UP)
    out["upsample fwd+bwd (jax.image.resize)"] = fwd_bwd(alternatives.upsample2_resize, UP)
    return out


def torch_ops(b: int) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.cpu_count())))
    h, w, cin, cout = CONV
    out = {}
    for fmt_name, fmt in (("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)):
        x = torch.randn(b, cin, h, w).contiguous(memory_format=fmt).requires_grad_()
        kern = torch.randn(cout, cin, 3, 3).contiguous(memory_format=fmt).requires_grad_()
        y_in, y_k = F.conv2d(x, kern.detach(), padding=1), F.conv2d(x.detach(), kern, padding=1)
        g = torch.randn_like(y_in)
        with torch.no_grad():
            out[f"conv forward (PyTorch {fmt_name})"] = _ms(lambda: F.conv2d(x, kern, padding=1))
        out[f"conv input grad (PyTorch {fmt_name})"] = _ms(lambda: torch.autograd.grad(y_in, x, g, retain_graph=True))
        out[f"conv kernel grad (PyTorch {fmt_name})"] = _ms(
            lambda: torch.autograd.grad(y_k, kern, g, retain_graph=True)
        )

        def fwd_bwd(op, shape):
            a = torch.randn(b, shape[2], *shape[:2]).contiguous(memory_format=fmt).requires_grad_()
            return _ms(lambda: torch.autograd.grad(op(a), a, op(a).detach()))

        out[f"max pool fwd+bwd (PyTorch {fmt_name})"] = fwd_bwd(lambda a: F.max_pool2d(a, 2), POOL)
        out[f"upsample fwd+bwd (PyTorch {fmt_name})"] = fwd_bwd(
            lambda a: F.interpolate(a, scale_factor=2, mode="nearest"), UP
        )
    return out


if __name__ == "__main__":
    print(json.dumps({"jax": jax_ops, "torch": torch_ops}[sys.argv[1]](int(sys.argv[2]))))
