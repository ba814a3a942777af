"""The checks on a GPU host in one call: runs end to end read by grain without TensorFlow,
grain's rate on 1 core and on all, the training steps against PyTorch's, eager and compiled, and
InceptionV3's max pool as the GPU runs it against the CPU's strided selects.

    bash benchmarks/device_check.sh            # there; prepare first, here: benchmarks/device_prepare.py
    python -m benchmarks.device_check --out DIR [--budget 520] [--parts PARTS] [--quick]
        (PARTS: comma-separated from end_to_end, readers, bench, compiled, pools; all by default)

Each timed piece runs in its own process under its weight's share of --budget seconds among
the chosen --parts (WEIGHTS), so one that runs long costs only itself; everything is printed
and written to DIR/check.md as it comes (DIR/bench-*.json hold the step benchmark's raw
numbers). `compiled` (torch.compile'd PyTorch) is a part of its own so that a second call can
give it all the time it needs. --quick shrinks every piece for a rehearsal on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.device_runs import RUNS, load
from benchmarks.machine import available, versions

ROOT = Path(__file__).resolve().parents[1]

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "tensorflow-datasets", "torch", "pillow")
# The step benchmark's groups: models -> global batch (the first H200 table used these batches).
BENCH = {"inception_v3": 128, "segmenter,autoencoder,deep_cnn": 256}
# Label prefixes of benchmarks/run.py's cases: the torch.compile'd ones beside jaxvision bf16
# (which its ratios need), and all the others.
COMPILED, EAGER = "jaxvision bf16,PyTorch compiled", "jaxvision,PyTorch channels_last"
READS = ((1, False), (0, False), (0, True))  # (cores, 0 = all; decoded once?) of each reader measure
WEIGHTS = {
    **{f"end_to_end/{name}": w for name, w in zip(RUNS, (10, 16))},
    **{f"readers/{name}/{i}": 2 for name in RUNS for i in range(len(READS))},
    **{f"bench/{models}": 14 for models in BENCH},
    **{f"compiled/{models}": w for models, w in zip(BENCH, (20, 14))},
    "pools/inception_v3": 6,
}
PARTS = ("end_to_end", "readers", "bench", "compiled", "pools")
# InceptionV3's 3x3/2 max pool: the GPU keeps XLA's reduce_window and select_and_scatter; the
# CPU's strided selects, written for XLA:CPU, have never been timed on a GPU.
POOL_CASES = "as is,3x3/2 max pool: strided selects"


class Log:
    def __init__(self, out: Path, budget: float, parts: tuple[str, ...]):
        self.file, self.budget = open(out / "check.md", "a"), budget
        self.deadline = time.monotonic() + budget
        self.weight = sum(w for piece, w in WEIGHTS.items() if piece.split("/")[0] in parts)

    def __call__(self, text: str) -> None:
        print(text, flush=True)
        self.file.write(text + "\n")
        self.file.flush()

    def limit(self, piece: str) -> float:
        """The seconds a `piece` may take: its share of the budget, within what is left."""
        return max(min(WEIGHTS[piece] / self.weight * self.budget, self.deadline - time.monotonic()), 1.0)

    def run(self, title: str, command: list[str], piece: str) -> None:
        """Runs `command` in a process for its piece's time; logs its output (and, if it runs
        out of time, its progress on stderr)."""
        limit = self.limit(piece)
        self(f"\n## {title}\n\n`{' '.join(command)}` (at most {limit:.0f} s)\n")
        started, pipe = time.monotonic(), subprocess.PIPE
        # A session of its own, so that a timeout also ends the benchmark's worker processes,
        # which would otherwise keep their GPU memory through the pieces after it.
        with subprocess.Popen(command, cwd=ROOT, stdout=pipe, stderr=pipe, text=True, start_new_session=True) as p:
            try:
                out, err = p.communicate(timeout=limit)
                end = f"exit {p.returncode}"
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                out, err = p.communicate()
                end = "timed out"
        self((out + (err[-3000:] if end != "exit 0" else "")).strip())
        self(f"\n({end} after {time.monotonic() - started:.0f} s)")


def header(log: Log) -> None:
    packages = versions(PACKAGES)
    gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True) if shutil.which("nvidia-smi") else None
    log(f"# Device check, {time.strftime('%Y-%m-%d %H:%M')}\n")
    log(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; {packages}")
    log(f"GPUs: {gpus.stdout.strip() if gpus else 'no nvidia-smi'}")
    log(f"TensorFlow importable: {available('tensorflow')}")


def end_to_end(log: Log, prepared: dict, quick: bool) -> None:
    for name, (spec, run, overrides) in RUNS.items():
        command = [sys.executable, "-m", "benchmarks.end_to_end", spec, *overrides]
        command += ["--run", run] if run else []
        command += ["--config.data.reader=grain", f"--config.data.prepared={prepared[name]}"]
        command += ["--config.data.cache_decoded=true", "--epochs", "2" if quick else "5"]
        command += ["--steps", "3" if quick else "50"]
        log.run(f"End to end against the step alone: {name}, read by grain", command, f"end_to_end/{name}")


def readers(log: Log, prepared: dict, quick: bool) -> None:
    from benchmarks import readers as bench

    log("\n## grain's training pipelines alone (images/s, batch 32)\n")
    cores = len(os.sched_getaffinity(0))
    log(f"| run's data | 1 core | {cores} cores | {cores} cores, decoded once |\n|---|---:|---:|---:|")
    for name, (spec, run, overrides) in RUNS.items():
        data = load(spec, run, overrides).data.to_dict()
        data.update(prepared=prepared[name])
        rates = []
        for i, (n, cached) in enumerate(READS):
            try:
                found = bench.measure(
                    dict(data, cache_decoded=cached),
                    Path(tempfile.gettempdir()),
                    n or cores,
                    1 if quick else 2,
                    log.limit(f"readers/{name}/{i}"),
                )
                rates.append(f"{found['images_per_s']:.0f}")
            except subprocess.TimeoutExpired:
                rates.append("timed out")
            except RuntimeError as e:
                rates.append(f"failed: {str(e).strip().splitlines()[-1]}")
        log(f"| {name} | {' | '.join(rates)} |")


def steps(log: Log, out: Path, quick: bool, compiled: bool) -> None:
    """Every model's training step, jaxvision against PyTorch eager, or against torch.compile."""
    part = "compiled" if compiled else "bench"
    for models, batch in BENCH.items():
        sections, cases = ("train", COMPILED) if compiled else ("train,flops", EAGER)
        command = [sys.executable, "-m", "benchmarks.run", "--sections", sections, "--peers", "accelerator"]
        command += ["--models", models, "--batch", str(8 if quick else batch), "--cases", cases]
        command += ["--repeats", "1", "--steps", "1"] if quick else ["--repeats", "3", "--steps", "20"]
        command += ["--json", str(out / f"{part}-{models.split(',')[0]}.json")]
        title = "torch.compile'd PyTorch" if compiled else "Training steps against PyTorch eager"
        log.run(f"{title}: {models}, batch {batch}", command, f"{part}/{models}")


def pools(log: Log, quick: bool) -> None:
    command = [sys.executable, "-m", "benchmarks.run", "--sections", "ablations", "--ablation-models", "inception_v3"]
    command += ["--cases", POOL_CASES, "--batch", str(8 if quick else BENCH["inception_v3"])]
    command += ["--repeats", "1", "--steps", "1"] if quick else ["--repeats", "3", "--steps", "20"]
    log.run("InceptionV3's 3x3/2 max pool: reduce_window against strided selects", command, "pools/inception_v3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "device_check"))
    parser.add_argument("--budget", type=float, default=520, help="seconds for all chosen parts together")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}")
    parser.add_argument("--quick", action="store_true", help="a rehearsal: tiny runs and steps")
    args = parser.parse_args()
    parts = tuple(args.parts.split(","))
    if set(parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(set(parts) - set(PARTS))}: choose from {', '.join(PARTS)}")
    listing = Path(ROOT, ".device_data", "prepared.json")
    if not listing.is_file():
        raise SystemExit(
            f"No {listing.relative_to(ROOT)}: run benchmarks/device_prepare.py where TensorFlow is, "
            "and carry .whl and .device_data with the call."
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Each process compiles the same programs again (step alone, then each fit): cached once.
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "jaxvision_xla_cache"))
    log = Log(out, args.budget, parts)
    header(log)
    prepared = json.loads(listing.read_text())
    if "end_to_end" in parts:
        end_to_end(log, prepared, args.quick)
    if "readers" in parts:
        readers(log, prepared, args.quick)
    for compiled in (False, True):
        if ("compiled" if compiled else "bench") in parts:
            steps(log, out, args.quick, compiled)
    if "pools" in parts:
        pools(log, args.quick)
    log(f"\n{args.budget - (log.deadline - time.monotonic()):.0f} s of the {args.budget:.0f} s budget used.")


if __name__ == "__main__":
    main()
