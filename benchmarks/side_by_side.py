"""Why a CPU suite runs its runs side by side on one core each (jaxvision/research/scheduled.py).

    python -m benchmarks.side_by_side [--runs deep_cnn,bce] [--epochs 4]    prints a markdown table

Each quickstart run named (experiments/quickstart.py, trained by `train.fit` for --epochs) is
timed in fresh processes four ways: alone on every core; alone on one core; two copies at once,
one core each (what the suite does); two copies at once, both on every core. Reported: the
median epoch's seconds (the first, which compiles, left out) and the epochs per second the
machine gets in all, against one run alone on every core (the suite's way before).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = """
import json, sys
from jaxvision.configs import load_config
from jaxvision.research import suite
from jaxvision import train
name, epochs, workdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
run = suite.resolved_runs(load_config("experiments/quickstart.py"), workdir)[name]
run.num_epochs = epochs
train.fit(run, workdir)
seconds = [r["epoch_seconds"] for r in map(json.loads, open(workdir + "/metrics.jsonl")) if r["split"] == "train"]
print(json.dumps(seconds))
"""

SETTINGS = (  # (label, cores of each copy: None = every core)
    ("alone, every core", [None]),
    ("alone, one core", [0]),
    ("two at once, one core each", [0, 1]),
    ("two at once, every core", [None, None]),
)


def _start(name: str, epochs: int, core: int | None, root: str) -> subprocess.Popen:
    cores = sorted(os.sched_getaffinity(0))
    workdir = tempfile.mkdtemp(dir=root)
    setup = (lambda: os.sched_setaffinity(0, {cores[core % len(cores)]})) if core is not None else None
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, name, str(epochs), workdir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, TQDM_DISABLE="1"),
        preexec_fn=setup,
    )


def measure(name: str, epochs: int, cores: list, root: str) -> float:
    """The median epoch's seconds of the copies started at once on `cores`."""
    children = [_start(name, epochs, core, root) for core in cores]
    medians = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise RuntimeError(f"the {name} run exited with {child.returncode}")
        medians.append(statistics.median(json.loads(out.strip().splitlines()[-1])[1:]))
    return statistics.median(medians)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="deep_cnn,bce")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    print(f"{len(os.sched_getaffinity(0))} cores; median epoch (s) of {args.epochs} epochs, the first left out\n")
    print("| run | setting | epoch (s) | epochs/s of the machine | against one run on every core |")
    print("|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as root:
        for name in args.runs.split(","):
            base = None
            for label, cores in SETTINGS:
                seconds = measure(name, args.epochs, cores, root)
                rate = len(cores) / seconds
                base = base or rate
                print(f"| {name} | {label} | {seconds:.2f} | {rate:.3f} | {rate / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
