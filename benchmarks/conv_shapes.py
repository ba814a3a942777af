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

Where PyTorch is installed (the bench extra), a third process times the same passes with
oneDNN's kernels, through PyTorch's channels_last float32 convolutions (each shape's backend is
checked to be oneDNN's): what a oneDNN convolution called from XLA could gain at most, before
paying for the call and for the fusions XLA would lose around it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib
import json
import os
import subprocess
import sys
import time
from unittest import mock

from benchmarks.flags_section import YNN_ON
from benchmarks.flops import median_seconds
from benchmarks.machine import available
from benchmarks.specs import SPECS
from benchmarks.throughput import ROOT, child_env, markdown_table
from jaxvision import cpu_flags

KERNELS = ("Eigen", "YNNPACK")
ONEDNN = "oneDNN (PyTorch)"


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


def time_shape_onednn(x_shape, w_shape, strides, padding, train: bool, repeats: int = 5) -> dict:
    """Milliseconds of each pass of one convolution in oneDNN, through PyTorch (NHWC in memory)."""
    import torch
    import torch.nn.functional as F

    n, h, w, cin = x_shape
    kh, kw, _, cout = w_shape
    (top, bottom), (left, right) = padding
    x = F.pad(torch.randn(n, cin, h, w), (left, right, top, bottom)).contiguous(memory_format=torch.channels_last)
    k = torch.randn(cout, cin, kh, kw).contiguous(memory_format=torch.channels_last)
    conv = (list(strides), [0, 0], [1, 1], False, [0, 0], 1)  # stride, padding, dilation, transposed, out pad, groups
    backend = str(torch._C._select_conv_backend(x, k, None, *conv, None))
    if "Mkldnn" not in backend:
        raise SystemExit(f"PyTorch would not use oneDNN for {x_shape} * {w_shape} (it picks {backend}).")
    g = torch.randn_like(F.conv2d(x, k, stride=strides)).contiguous(memory_format=torch.channels_last)

    def grad(mask):  # one gradient alone, as XLA computes each where it is needed
        return lambda: torch.ops.aten.convolution_backward(g, x, k, None, *conv, mask)

    passes = {"forward oneDNN": lambda: F.conv2d(x, k, stride=strides)}
    if train:
        passes["input grad oneDNN"] = grad([True, False, False])
        passes["kernel grad oneDNN"] = grad([False, True, False])
    with torch.no_grad():
        return {p: 1e3 * median_seconds(f, repeats) for p, f in passes.items()}


def worker(model: str, batch: int, train: bool, rewrites: bool, onednn: bool = False) -> list[dict]:
    if onednn:
        import torch

        torch.set_num_threads(os.cpu_count())
    rows, shapes, start = [], model_shapes(model, batch), time.perf_counter()
    for x, w, s, p, n in shapes:
        ms = time_shape_onednn(x, w, s, p, train) if onednn else time_shape(x, w, s, p, train, rewrites)
        rows.append(dict(x=x, w=w, strides=s, padding=p, count=n, ms=ms))
        done = len(rows) / len(shapes)
        eta = (time.perf_counter() - start) * (1 - done) / done
        print(f"  {len(rows)}/{len(shapes)} shapes, {eta:.0f} s to go", file=sys.stderr, flush=True)
    return rows


def _run_worker(model: str, batch: int, train: bool, kernel: str) -> list[dict]:
    flags = cpu_flags.merge(" ".join(cpu_flags.DEFAULTS), os.environ.get("XLA_FLAGS", ""))
    argv = ["-m", "benchmarks.conv_shapes", model, "--worker", "--batch", str(batch)] + ["--train"] * train
    if kernel == "YNNPACK":
        flags, argv = cpu_flags.merge(flags, YNN_ON), argv + ["--no-rewrites"]
    if kernel == ONEDNN:
        argv += ["--onednn"]
    what = {"Eigen": "XLA's Eigen convolutions and the rewrites", "YNNPACK": "XLA's YNNPACK convolutions"}
    print(f"{model}: timing {what.get(kernel, ONEDNN + ' convolutions')}", file=sys.stderr)
    proc = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=child_env(XLA_FLAGS=flags), stdout=subprocess.PIPE, text=True
    )
    if proc.returncode:
        raise SystemExit(f"The {kernel} worker failed (its error is above).")
    return json.loads(proc.stdout.splitlines()[-1])


def table(model: str, batch: int, train: bool, timings: dict[str, list[dict]]) -> str:
    """One row per shape: every kernel's milliseconds per pass, what cpu_conv picks and the fastest
    of those jaxvision can run; then oneDNN's milliseconds, where they were timed."""
    from jaxvision.models import cpu_conv

    passes = ("forward", "input grad", "kernel grad") if train else ("forward",)
    columns = ["input", "kernel", "stride", "padding", "count:"]
    for p in passes:
        columns += [f"{p} {k}:" for k in (*KERNELS, "rewrite")] + [f"{p} as is", f"{p} fastest"]
    onednn = timings.get(ONEDNN)
    columns += [f"{p} oneDNN:" for p in passes] * bool(onednn)
    totals = collections.Counter()
    rows = []
    for i, (eigen, ynn) in enumerate(zip(timings["Eigen"], timings["YNNPACK"])):
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
        for p in passes if onednn else ():
            cells.append(f"{onednn[i]['ms'][f'{p} oneDNN']:.1f}")
            totals[p, "oneDNN"] += eigen["count"] * onednn[i]["ms"][f"{p} oneDNN"]
        rows.append(cells)
    title = f"Convolutions of {model}, batch {batch}, alone (ms, median of 5)"
    summed = (*KERNELS, "rewrite", "as is", "fastest") + ("oneDNN", "as is / oneDNN") * bool(onednn)
    totals.update({(p, "as is / oneDNN"): totals[p, "as is"] / totals[p, "oneDNN"] for p in passes if onednn})
    summary = [f"\nSummed over the {sum(t['count'] for t in timings['Eigen'])} convolutions (ms per step):\n"]
    summary += ["| pass | " + " | ".join(("fastest of each shape" if k == "fastest" else k) for k in summed) + " |"]
    summary += ["|---|" + "---:|" * len(summed)]
    for p in passes:
        cells = (f"{totals[p, k]:.2f}" if k.startswith("as is /") else f"{totals[p, k]:.0f}" for k in summed)
        summary.append(f"| {p} | " + " | ".join(cells) + " |")
    return markdown_table(title, tuple(columns), rows) + "\n" + "\n".join(summary)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(SPECS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--train", action="store_true", help="also the input and kernel gradients")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-rewrites", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--onednn", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.model, args.batch, args.train, not args.no_rewrites, args.onednn)))
        return
    kernels = KERNELS + (ONEDNN,) * available("torch")
    timings = {k: _run_worker(args.model, args.batch, args.train, k) for k in kernels}
    print(table(args.model, args.batch, args.train, timings))


if __name__ == "__main__":
    main()
