"""Each convolution shape of a model, timed alone: XLA:CPU's Eigen and YNNPACK kernels against
the rewrites of jaxvision/models/cpu_conv.py.

    python -m benchmarks.conv_shapes MODEL [--batch N] [--train]     prints the markdown table
    python -m benchmarks.conv_shapes MODEL --worker [--batch N] [--train]   one process's JSON

The shapes are read from the model's own inference program (each distinct input, kernel,
stride and padding, with how often it occurs). Every shape's forward is timed as XLA's
convolution and as cpu_conv's rewrite (col2im for at most 4 output channels, else im2col + one
matmul); with --train also its input gradient (XLA's, and the transpose of the rewrite) and its
kernel gradient (XLA's, and cpu_conv.kernel_grad's matmul). XLA's
kernels are timed twice, in two processes: under jaxvision's CPU flags (Eigen; cpu_flags.py)
and with YNNPACK's convolutions back on; the rewrites are matmuls and are timed under
jaxvision's flags. 'as is' is what cpu_conv.lowering picks; the totals weigh each shape by its
count, so they add up to the convolutions' share of one step.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib
import json
import subprocess
import sys
import time
from unittest import mock

from benchmarks.flags_section import YNN_ON
from benchmarks.flops import median_seconds
from benchmarks.specs import SPECS
from benchmarks.throughput import ROOT, child_env, markdown_table
from jaxvision import cpu_flags

KERNELS = ("Eigen", "YNNPACK")


def model_shapes(model: str, batch: int) -> list[tuple]:
    """(input shape, kernel shape, strides, padding, count) of every distinct convolution of `model`."""
    import jax
    import jax.extend
    from jax import lax

    from benchmarks import ablations, jaxvision_side

    found = collections.Counter()

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "conv_general_dilated":
                x, w = (v.aval.shape for v in eqn.invars)
                found[(tuple(x), tuple(w), tuple(eqn.params["window_strides"]), tuple(eqn.params["padding"]))] += 1
        for sub in jax.extend.core.subjaxprs(jaxpr):
            walk(sub)

    # plain lax convolutions while the program is traced, so that it names each one once
    with contextlib.ExitStack() as patches:
        for name in ablations.MODEL_MODULES:
            module = importlib.import_module(name)
            if hasattr(module, "conv_general_dilated"):
                patches.enter_context(mock.patch.object(module, "conv_general_dilated", lax.conv_general_dilated))
        step = jaxvision_side.inference(SPECS[model], batch=batch)
        walk(jax.make_jaxpr(step.fn)(step.state, *step.args).jaxpr)
    return [(*key, n) for key, n in found.items()]


def time_shape(x_shape, w_shape, strides, padding, train: bool, rewrites: bool, repeats: int = 5) -> dict:
    """Milliseconds of each pass of one convolution: XLA's, and (`rewrites`) cpu_conv's."""
    import jax
    from jax import lax

    from jaxvision.models import cpu_conv

    k = jax.random.split(jax.random.key(0), 3)
    x, w = jax.random.normal(k[0], x_shape), jax.random.normal(k[1], w_shape)
    nhwc = cpu_conv._NHWC

    def xla(x, w):
        return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=nhwc)

    few_outputs = w_shape[3] <= cpu_conv._COL2IM_MAX_OUT and strides == (1, 1)

    def rewrite(x, w):  # the forward rewrite cpu_conv has for this shape
        if few_outputs:
            return cpu_conv._col2im_conv(x, w, padding, None)
        return cpu_conv._im2col_conv(x, w, strides, padding, None)

    g = jax.random.normal(k[2], jax.eval_shape(xla, x, w).shape)
    passes = {"forward XLA": jax.jit(xla)}
    if rewrites:
        passes["forward rewrite"] = jax.jit(rewrite)
    if train:
        passes["input grad XLA"] = jax.jit(lambda x, w, g: jax.vjp(lambda x: xla(x, w), x)[1](g)[0])
        passes["kernel grad XLA"] = jax.jit(lambda x, w, g: jax.vjp(lambda w: xla(x, w), w)[1](g)[0])
        if rewrites:
            passes["input grad rewrite"] = jax.jit(
                lambda x, w, g: jax.linear_transpose(lambda x: rewrite(x, w), x)(g)[0]
            )
            passes["kernel grad rewrite"] = jax.jit(
                lambda x, w, g: cpu_conv.kernel_grad(x, g, w.shape, strides, padding)
            )
    args = {p: (x, w) if p.startswith("forward") else (x, w, g) for p in passes}
    return {p: 1e3 * median_seconds(lambda: f(*args[p]).block_until_ready(), repeats) for p, f in passes.items()}


def worker(model: str, batch: int, train: bool, rewrites: bool) -> list[dict]:
    rows, shapes, start = [], model_shapes(model, batch), time.perf_counter()
    for x, w, s, p, n in shapes:
        rows.append(dict(x=x, w=w, strides=s, padding=p, count=n, ms=time_shape(x, w, s, p, train, rewrites)))
        done = len(rows) / len(shapes)
        eta = (time.perf_counter() - start) * (1 - done) / done
        print(f"  {len(rows)}/{len(shapes)} shapes, {eta:.0f} s to go", file=sys.stderr, flush=True)
    return rows


def _run_worker(model: str, batch: int, train: bool, kernel: str) -> list[dict]:
    import os

    flags = cpu_flags.merge(" ".join(cpu_flags.DEFAULTS), os.environ.get("XLA_FLAGS", ""))
    argv = ["-m", "benchmarks.conv_shapes", model, "--worker", "--batch", str(batch)] + ["--train"] * train
    if kernel == "YNNPACK":
        flags, argv = cpu_flags.merge(flags, YNN_ON), argv + ["--no-rewrites"]
    print(
        f"{model}: timing XLA's {kernel} convolutions" + (" and the rewrites" * (kernel != "YNNPACK")), file=sys.stderr
    )
    proc = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=child_env(XLA_FLAGS=flags), stdout=subprocess.PIPE, text=True
    )
    if proc.returncode:
        raise SystemExit(f"The {kernel} worker failed (its error is above).")
    return json.loads(proc.stdout.splitlines()[-1])


def table(model: str, batch: int, train: bool, timings: dict[str, list[dict]]) -> str:
    """One row per shape: every kernel's milliseconds per pass, what cpu_conv picks and the fastest."""
    from jaxvision.models import cpu_conv

    passes = ("forward", "input grad", "kernel grad") if train else ("forward",)
    columns = ["input", "kernel", "stride", "padding", "count:"]
    for p in passes:
        columns += [f"{p} {k}:" for k in (*KERNELS, "rewrite")] + [f"{p} as is", f"{p} fastest"]
    totals = collections.Counter()
    rows = []
    for eigen, ynn in zip(timings["Eigen"], timings["YNNPACK"]):
        kinds = cpu_conv.lowering(tuple(eigen["w"]), tuple(eigen["strides"]), tuple(map(tuple, eigen["padding"])))
        cells = ["x".join(map(str, eigen["x"][1:])), "x".join(map(str, eigen["w"])), str(eigen["strides"][0])]
        cells += ["VALID" if not any(map(any, eigen["padding"])) else "SAME", str(eigen["count"])]
        for p in passes:
            ms = {
                "Eigen": eigen["ms"][f"{p} XLA"],
                "YNNPACK": ynn["ms"][f"{p} XLA"],
                "rewrite": eigen["ms"][f"{p} rewrite"],
            }
            as_is = "Eigen" if kinds[p] == "xla" else "rewrite"
            fastest = min(ms, key=ms.get)
            cells += [f"{ms[k]:.1f}" for k in ms] + [as_is, fastest]
            for k in ms:
                totals[p, k] += eigen["count"] * ms[k]
            totals[p, "as is"] += eigen["count"] * ms[as_is]
            totals[p, "fastest"] += eigen["count"] * ms[fastest]
        rows.append(cells)
    title = f"Convolutions of {model}, batch {batch}, alone (ms, median of 5)"
    summary = [f"\nSummed over the {sum(t['count'] for t in timings['Eigen'])} convolutions (ms per step):\n"]
    summary += ["| pass | " + " | ".join((*KERNELS, "rewrite", "as is", "fastest of each shape")) + " |"]
    summary += ["|---|" + "---:|" * 5]
    for p in passes:
        summary.append(
            f"| {p} | " + " | ".join(f"{totals[p, k]:.0f}" for k in (*KERNELS, "rewrite", "as is", "fastest")) + " |"
        )
    return markdown_table(title, tuple(columns), rows) + "\n" + "\n".join(summary)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(SPECS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--train", action="store_true", help="also the input and kernel gradients")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-rewrites", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.model, args.batch, args.train, not args.no_rewrites)))
        return
    timings = {k: _run_worker(args.model, args.batch, args.train, k) for k in KERNELS}
    print(table(args.model, args.batch, args.train, timings))


if __name__ == "__main__":
    main()
