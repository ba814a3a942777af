"""Issue 13's checks on a GPU host in one call: runs end to end read by grain without TensorFlow,
grain's rate on 1 core and on all, and the training steps against PyTorch's.

    bash benchmarks/device_check.sh            # there; prepare first, here: benchmarks/device_prepare.py
    python benchmarks/device_check.py --out DIR [--budget 450] [--quick]

Each part runs in its own process under its share of --budget seconds (SHARES), so one that
runs long costs only itself; everything is printed and written to DIR/check.md as it comes
(DIR/bench.json holds the step benchmark's raw numbers). --quick shrinks every part for a
rehearsal on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.device_runs import RUNS, load  # noqa: E402
from benchmarks.machine import available, versions  # noqa: E402

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "tensorflow-datasets", "torch", "pillow")
# The step benchmark's cases: (models, global batch); issue 13's H200 table used these batches.
BENCH = (("inception_v3", 128), ("segmenter,autoencoder,deep_cnn", 256))
# Each part's share of the budget: each end-to-end run, each reader measurement, each BENCH case.
SHARES = dict(end_to_end=0.15, reader=0.03, bench=0.26)


class Log:
    def __init__(self, out: Path, budget: float):
        self.file, self.budget = open(out / "check.md", "a"), budget
        self.deadline = time.monotonic() + budget

    def __call__(self, text: str) -> None:
        print(text, flush=True)
        self.file.write(text + "\n")
        self.file.flush()

    def limit(self, part: str) -> float:
        """The seconds a `part` may take: its share of the budget, within what is left."""
        return max(min(SHARES[part] * self.budget, self.deadline - time.monotonic()), 1.0)

    def run(self, title: str, command: list[str], part: str) -> None:
        """Runs `command` in a process for its part's time; logs its output."""
        limit = self.limit(part)
        self(f"\n## {title}\n\n`{' '.join(command)}` (at most {limit:.0f} s)\n")
        started = time.monotonic()
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=limit)
            text, end = done.stdout, f"exit {done.returncode}"
            if done.returncode:
                text += done.stderr[-3000:]
        except subprocess.TimeoutExpired as e:
            text, end = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "timed out"
        self(text.strip())
        self(f"\n({end} after {time.monotonic() - started:.0f} s)")


def header(log: Log) -> None:
    packages = versions(PACKAGES)
    gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True) if shutil.which("nvidia-smi") else None
    log(f"# Issue 13 device check, {time.strftime('%Y-%m-%d %H:%M')}\n")
    log(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; {packages}")
    log(f"GPUs: {gpus.stdout.strip() if gpus else 'no nvidia-smi'}")
    log(f"TensorFlow importable: {available('tensorflow')}")


def end_to_end(log: Log, prepared: dict, quick: bool) -> None:
    for name, (spec, run, overrides) in RUNS.items():
        command = [sys.executable, "benchmarks/end_to_end.py", spec, *overrides]
        command += ["--run", run] if run else []
        command += ["--config.data.reader=grain", f"--config.data.prepared={prepared[name]}"]
        command += ["--config.data.cache_decoded=true", "--epochs", "2" if quick else "5"]
        command += ["--steps", "3" if quick else "50"]
        log.run(f"End to end against the step alone: {name}, read by grain", command, "end_to_end")


def readers(log: Log, prepared: dict, quick: bool) -> None:
    from benchmarks import readers as bench

    log("\n## grain's training pipelines alone (images/s, batch 32)\n")
    cores = len(os.sched_getaffinity(0))
    log(f"| run's data | 1 core | {cores} cores | {cores} cores, decoded once |\n|---|---:|---:|---:|")
    for name, (spec, run, overrides) in RUNS.items():
        data = load(spec, run, overrides).data.to_dict()
        data.update(prepared=prepared[name])
        rates = []
        for n, cached in ((1, False), (cores, False), (cores, True)):
            try:
                found = bench.measure(
                    dict(data, cache_decoded=cached),
                    Path(tempfile.gettempdir()),
                    n,
                    1 if quick else 2,
                    log.limit("reader"),
                )
                rates.append(f"{found['images_per_s']:.0f}")
            except subprocess.TimeoutExpired:
                rates.append("timed out")
            except RuntimeError as e:
                rates.append(f"failed: {str(e).strip().splitlines()[-1]}")
        log(f"| {name} | {' | '.join(rates)} |")


def steps(log: Log, out: Path, quick: bool) -> None:
    for i, (models, batch) in enumerate(BENCH):
        command = [sys.executable, "benchmarks/run.py", "--sections", "train,flops", "--peers", "accelerator"]
        command += ["--models", models, "--batch", str(8 if quick else batch)]
        command += ["--repeats", "1", "--steps", "1"] if quick else ["--repeats", "3", "--steps", "20"]
        command += ["--json", str(out / f"bench{i}.json")]
        log.run(f"Training steps against PyTorch: {models}, batch {batch}", command, "bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "device_check"))
    parser.add_argument("--budget", type=float, default=450, help="seconds for all parts together")
    parser.add_argument("--quick", action="store_true", help="a rehearsal: tiny runs and steps")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out, args.budget)
    header(log)
    prepared = json.loads(Path(ROOT, ".device_data", "prepared.json").read_text())
    end_to_end(log, prepared, args.quick)
    readers(log, prepared, args.quick)
    steps(log, out, args.quick)
    log(f"\n{args.budget - (log.deadline - time.monotonic()):.0f} s of the {args.budget:.0f} s budget used.")


if __name__ == "__main__":
    main()
