"""One training step's oneDNN calls, jaxvision + oneDNN (`JAXVISION_ONEDNN=1`) against PyTorch
channels_last, call by call from oneDNN's own log (`ONEDNN_VERBOSE=1`).

    python -m benchmarks.onednn_calls [--model inception_v3] [--batch 16] [--steps 2]

Both frameworks' convolutions are oneDNN kernels on CPU, so this splits the gap between their
steps into kernels (the same kernel slower or faster in one framework), kernels one of them
calls and the other does not, and the rest of the step. Each side runs in its own process:
untimed steps first, then `--steps` logged steps. jaxlib's own oneDNN (its matrix products)
logs too, as `gemm_api`.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import time

_BEGIN, _END = "ONEDNN_CALLS_BEGIN", "ONEDNN_CALLS_END"
SIDES = {"jaxvision": "jaxvision + oneDNN", "torch": "PyTorch channels_last"}


def _step(side: str, model: str, batch: int, steps: int) -> None:
    case = {"model": model, "mode": "train", "batch": batch}
    if side == "torch":
        from benchmarks.peers_torch import build_case

        case["variant"] = {"channels_last": True}
    else:
        from benchmarks.jaxvision_side import build_case

        case["variant"] = {"conv": "onednn"}
    run, _, _ = build_case(case)
    run(2)  # compiles, creates the primitives, warms the caches
    print(_BEGIN, flush=True)
    start = time.perf_counter()
    run(steps)
    print(_END, (time.perf_counter() - start) / steps, flush=True)


def parse(log: str) -> tuple[dict[tuple[str, str, str], list], float]:
    """(kind, pass, window) -> [calls, ms, kernels] over the logged steps, and seconds a step."""
    calls: dict[tuple[str, str, str], list] = collections.defaultdict(lambda: [0, 0.0, set()])
    inside, seconds = False, float("nan")
    for line in log.splitlines():
        if line.startswith(_BEGIN):
            inside = True
        elif line.startswith(_END):
            inside, seconds = False, float(line.split()[1])
        elif inside and line.startswith("onednn_verbose") and ",exec," in line:
            fields = line.split(",")
            at = fields.index("exec")
            kind, kernel, phase = fields[at + 2], fields[at + 3], fields[at + 4]
            window = re.search(r"kh(\d+).*kw(\d+)", line)
            one_by_one = window is not None and window.groups() == ("1", "1")
            shape = ("1x1" if one_by_one else "other") if kind == "convolution" else ""
            entry = calls[(kind, phase, shape)]
            entry[0] += 1
            entry[1] += float(fields[-1])
            entry[2].add(kernel or "-")
    return calls, seconds


def table(results: dict[str, tuple[dict, float]], steps: int) -> str:
    names = list(results)
    head = " | ".join(f"{SIDES[n]} calls | ms | kernels" for n in names)
    lines = [f"| primitive | pass | window | {head} |", "|---|---|---|" + "---:|---:|---|" * len(names)]
    keys = sorted({k for calls, _ in results.values() for k in calls}, key=lambda k: (k[0] != "convolution", k))
    totals = {n: 0.0 for n in names}
    for key in keys:
        cells = []
        for n in names:
            count, ms, kernels = results[n][0].get(key, [0, 0.0, set()])
            totals[n] += ms / steps
            cells.append(f"{count / steps:g} | {ms / steps:.1f} | {', '.join(sorted(kernels))}")
        lines.append(f"| {' | '.join(key)} | {' | '.join(cells)} |")
    for label, values in (
        ("all oneDNN calls", [f"{totals[n]:.1f}" for n in names]),
        ("the step (wall clock)", [f"{results[n][1] * 1e3:.0f}" for n in names]),
    ):
        lines.append("| " + " | ".join([label, "", "", *(c for v in values for c in ("", v, ""))]) + " |")
    return "\n".join(lines) + f"\n\n(ms and calls per step, {steps} logged steps each)"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="inception_v3")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # a worker's own side
    args = parser.parse_args(argv)
    if args.side:
        return _step(args.side, args.model, args.batch, args.steps)
    from jaxvision.models import onednn_conv

    if problem := onednn_conv.missing():
        sys.exit(f"benchmarks.onednn_calls times jaxvision's oneDNN path, which cannot run here: {problem}.")
    results = {}
    for side in SIDES:
        env = {**os.environ, "ONEDNN_VERBOSE": "1", "JAXVISION_ONEDNN": "1"}
        command = [sys.executable, "-m", "benchmarks.onednn_calls", "--side", side]
        command += ["--model", args.model, "--batch", str(args.batch), "--steps", str(args.steps)]
        print(f"{SIDES[side]}: {args.steps} logged steps ...", file=sys.stderr, flush=True)
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"The {SIDES[side]} worker failed:\n{done.stderr[-2000:]}")
        results[side] = parse(done.stdout)
    print(table(results, args.steps))


if __name__ == "__main__":
    main()
