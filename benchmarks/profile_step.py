"""Where one jaxvision training step spends its time, op by op (XLA:CPU or GPU).

    python -m benchmarks.profile_step MODEL [--batch N] [--top K] [--variant JSON] [--infer]

Traces a few steps of the benchmark's step with `jax.profiler` (a Perfetto trace), sums the
duration of every XLA op (thunk) over threads and steps, and prints the K most expensive ops
per step with the shapes they work on (from the compiled HLO), so that a slow op can be
traced back to the layer it belongs to, then the same totals by kind of op (all `ffi_call`s,
i.e. oneDNN's convolutions under JAXVISION_ONEDNN=1, all `ynn_fusion`s, ...). This is how the
CPU gap in RESULTS.md was found.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import tempfile


def op_times(trace_dir: str) -> dict[str, float]:
    """Milliseconds per op name, summed over every thread, from the Perfetto trace."""
    (path,) = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)
    with gzip.open(path) as f:
        events = json.load(f)["traceEvents"]
    totals = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            totals[e["name"]] += e["dur"] / 1e3
    return totals


def hlo_shapes(hlo_text: str) -> dict[str, str]:
    """The result shape of each named instruction of the compiled HLO."""
    found = re.findall(r"^\s*(?:ROOT )?%?([\w.\-]+) = (\S+)", hlo_text, flags=re.M)
    return dict(found)


def by_kind(ops: dict[str, float]) -> dict[str, tuple[float, int]]:
    """Milliseconds and count per kind of op: 'ffi_call.475' and 'ffi_call.3' are both 'ffi_call'."""
    kinds: dict[str, list] = collections.defaultdict(lambda: [0.0, 0])
    for name, ms in ops.items():
        kind = kinds[re.sub(r"\.\d+$", "", name)]
        kind[0] += ms
        kind[1] += 1
    return {k: (ms, n) for k, (ms, n) in kinds.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--variant", default="{}", help='an ablations.py variant, e.g. \'{"conv": "xla"}\'')
    parser.add_argument("--infer", action="store_true", help="inference (train=False) instead of a training step")
    args = parser.parse_args(argv)

    import jax

    from benchmarks import ablations, jaxvision_side
    from benchmarks.specs import SPECS

    overrides = ablations.apply(json.loads(args.variant))
    build = jaxvision_side.inference if args.infer else jaxvision_side.train_step
    step = build(SPECS[args.model], batch=args.batch, **overrides)
    step.run(2)
    shapes = hlo_shapes(step.fn.lower(step.state, *step.args).compile().as_text())
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            step.run(args.steps)
        totals = op_times(trace_dir)
    ops = {name: ms / args.steps for name, ms in totals.items() if name in shapes}
    whole = sum(ops.values())
    print(
        f"{args.model}{' inference' if args.infer else ''}, batch {args.batch or SPECS[args.model].batch}: "
        f"{whole:.0f} ms of op time per step (summed over threads), {len(ops)} ops"
    )
    for name, ms in sorted(ops.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{ms:9.1f} ms  {100 * ms / whole:5.1f}%  {name:40s} {shapes[name]}")
    print("\nBy kind of op (the name without its number):")
    for kind, (ms, n) in sorted(by_kind(ops).items(), key=lambda kv: -kv[1][0])[: args.top]:
        print(f"{ms:9.1f} ms  {100 * ms / whole:5.1f}%  {kind:40s} {n} ops")


if __name__ == "__main__":
    main()
