"""Why one step's time spreads: each step's wall time beside what the machine did meanwhile.

    python -m benchmarks.spread [--model inception_v3] [--frameworks jaxvision,torch] [--rounds 2] [--steps 8]
                                [--pause 10] [--tunables "glibc.malloc.hugetlb=1" --tunables "..."]

Each (framework, round) is a fresh worker process timed alone, one after the other. For every
step it records the wall time, the process's own user and system CPU seconds and minor page
faults (/proc/self/stat), and the whole machine's steal time (/proc/stat: CPU time the
hypervisor gave to other guests). A slow step that comes with steal is the VM's neighbours; one
that comes with system time and faults is memory being mapped again; one with neither is the
step itself. `--pause` leaves each worker idle that many seconds before every timed step, as an
interleaved benchmark round leaves the workers it is not timing; each `--tunables` value is a
GLIBC_TUNABLES setting timed as its own worker. Linux only (it reads /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_counters(stat: str) -> dict[str, float]:
    """User and system CPU seconds and minor faults from a /proc/PID/stat line."""
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces; fields from 'state' on
    return {"minflt": float(fields[7]), "user_s": int(fields[11]) / CLK_TCK, "sys_s": int(fields[12]) / CLK_TCK}


def steal_seconds(proc_stat: str) -> float:
    """The machine's steal time so far, summed over CPUs, from /proc/stat."""
    cpu = proc_stat.splitlines()[0].split()
    assert cpu[0] == "cpu", cpu[0]
    return int(cpu[8]) / CLK_TCK


def _sample() -> dict[str, float]:
    with open("/proc/self/stat") as f:
        counters = process_counters(f.read())
    with open("/proc/stat") as f:
        counters["steal_s"] = steal_seconds(f.read())
    counters["wall_s"] = time.perf_counter()
    return counters


def deltas(samples: list[dict[str, float]]) -> list[dict[str, float]]:
    """Per step: each counter's increase between consecutive samples."""
    return [{k: b[k] - a[k] for k in a} for a, b in zip(samples, samples[1:])]


def worker(framework: str, model: str, steps: int, pause_s: float) -> None:
    from benchmarks.worker import framework_module

    variant = {"channels_last": True} if framework == "torch" else {}
    run, _, _ = framework_module(framework).build_case(
        {"framework": framework, "model": model, "mode": "train", "variant": variant}
    )
    run(1)  # compiles
    run(1)
    timed = []
    for _ in range(steps):
        time.sleep(pause_s)
        before = _sample()
        run(1)
        timed += deltas([before, _sample()])
    print(json.dumps(timed))


def _step(s: dict[str, float]) -> str:
    return f"{s['wall_s']:.2f} s: steal {s['steal_s']:.2f}, sys {s['sys_s']:.2f}, faults {s['minflt']:.0f}"


def summary(framework: str, round_: int | str, batch: int, steps: list[dict[str, float]]) -> str:
    rates = [batch / s["wall_s"] for s in steps]
    slow = max(steps, key=lambda s: s["wall_s"])
    fast = min(steps, key=lambda s: s["wall_s"])
    return (
        f"| {framework} | {round_} | {statistics.median(rates):.2f} | {min(rates):.2f}-{max(rates):.2f} "
        f"| {sum(s['steal_s'] for s in steps) / sum(s['wall_s'] for s in steps):.2f} "
        f"| {_step(slow)} | {_step(fast)} |"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="inception_v3")
    parser.add_argument("--frameworks", default="jaxvision,torch")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--pause", type=float, default=0.0, help="idle seconds before each timed step")
    parser.add_argument(
        "--tunables", action="append", help="a GLIBC_TUNABLES setting to time (repeatable; default: this one's)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.model, args.steps, args.pause)

    from benchmarks.specs import SPECS

    batch = SPECS[args.model].batch
    settings = args.tunables or [os.environ.get("GLIBC_TUNABLES", "")]
    print(
        f"{args.model} training step, batch {batch}, {args.steps} steps per process, one process at a time, "
        f"{args.pause:g} s idle before each step\n"
    )
    print(
        "| framework | GLIBC_TUNABLES | round | img/s (median) | min-max | steal / wall | slowest step | fastest step |"
    )
    print("|---|---|---:|---:|---:|---:|---|---|")
    for round_ in range(1, args.rounds + 1):
        for tunables in settings:
            for framework in args.frameworks.split(","):
                out = subprocess.run(
                    [sys.executable, "-m", "benchmarks.spread", "--worker", framework, "--model", args.model,
                     "--steps", str(args.steps), "--pause", str(args.pause)],
                    capture_output=True, text=True, check=True, env={**os.environ, "GLIBC_TUNABLES": tunables},
                )  # fmt: skip
                steps = json.loads(out.stdout.splitlines()[-1])
                print(summary(framework, f"`{tunables}` | {round_}", batch, steps), flush=True)


if __name__ == "__main__":
    main()
