"""Why a CPU suite runs its runs side by side on one core each (jaxvision/research/scheduled.py).

    python -m benchmarks.side_by_side [--runs deep_cnn,bce] [--epochs 4]    prints a markdown table

Each quickstart run named (experiments/quickstart.py, trained by `train.fit` for --epochs) is
timed in fresh processes five ways: alone on every core; alone on one core; two copies at once,
one core each (what the suite does); two copies at once, both on every core; two copies as
threads of one process on every core. Reported: the median epoch's seconds (the first, which
compiles, left out), the epochs per second the machine gets in all, against one run alone on
every core (the suite's way before), and the last validation loss, which shows which settings
round alike.
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
import json, sys, threading
from jaxvision.configs import load_config
from jaxvision.research import suite
from jaxvision import train
name, epochs, copies, workdir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
found = []

def fit(i):
    sub = f"{workdir}/{i}"
    run = suite.resolved_runs(load_config("experiments/quickstart.py"), sub)[name]
    run.num_epochs = epochs
    train.fit(run, sub)
    records = [json.loads(line) for line in open(sub + "/metrics.jsonl")]
    found.append({
        "seconds": [r["epoch_seconds"] for r in records if r["split"] == "train"],
        "loss": [r["loss"] for r in records if r["split"] == "validation"][-1],
    })

threads = [threading.Thread(target=fit, args=(i,)) for i in range(copies)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps(found))
"""

SETTINGS = (  # (label, the core of each process (None = every core), copies per process)
    ("alone, every core", [None], 1),
    ("alone, one core", [0], 1),
    ("two at once, one core each", [0, 1], 1),
    ("two at once, every core", [None, None], 1),
    ("two threads of one process, every core", [None], 2),
)


def _start(name: str, epochs: int, core: int | None, copies: int, root: str) -> subprocess.Popen:
    cores = sorted(os.sched_getaffinity(0))
    workdir = tempfile.mkdtemp(dir=root)
    setup = (lambda: os.sched_setaffinity(0, {cores[core % len(cores)]})) if core is not None else None
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, name, str(epochs), str(copies), workdir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, TQDM_DISABLE="1"),
        preexec_fn=setup,  # this parent never starts jax, so forking it is safe
    )


def measure(name: str, epochs: int, cores: list, copies: int, root: str) -> tuple[float, int, list[float]]:
    """The median epoch's seconds of the runs started at once, how many ran, and their last
    validation losses."""
    children = [_start(name, epochs, core, copies, root) for core in cores]
    found = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode:
            raise RuntimeError(f"the {name} run exited with {child.returncode}")
        found += json.loads(out.strip().splitlines()[-1])
    seconds = statistics.median(statistics.median(f["seconds"][1:]) for f in found)
    return seconds, len(found), [f["loss"] for f in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="deep_cnn,bce")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    print(f"{len(os.sched_getaffinity(0))} cores; median epoch (s) of {args.epochs} epochs, the first left out\n")
    print(
        "| run | setting | epoch (s) | epochs/s of the machine | against one run on every core | last validation loss |"
    )
    print("|---|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as root:
        for name in args.runs.split(","):
            base = None
            for label, cores, copies in SETTINGS:
                seconds, ran, losses = measure(name, args.epochs, cores, copies, root)
                rate = ran / seconds
                base = base or rate
                shown = " / ".join(f"{loss:.6f}" for loss in losses)
                print(f"| {name} | {label} | {seconds:.2f} | {rate:.3f} | {rate / base:.2f}x | {shown} |", flush=True)


if __name__ == "__main__":
    main()
