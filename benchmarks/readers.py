"""tf.data against grain (config.data.reader), images per second on one core and on all cores.

    python -m benchmarks.readers [--work DIR] [--epochs 2] [--only shapes,folder]

Every pipeline of benchmarks/data_pipeline.py, read by each reader in a fresh process pinned
to one core, then to every core of this machine (`os.sched_setaffinity`, which both readers
size their threads by). Each case's data are prepared once (tf.data's copy and grain's
array_record copy) before anything is timed. The last column is grain with
config.data.cache_decoded on all cores, timed after the epoch that fills its cache. Prints a
markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEASURE = """
import json, os, sys
os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: int(sys.argv[1])]))
from benchmarks import data_pipeline
data = json.loads(sys.argv[2])
work, epochs, untimed = __import__("pathlib").Path(sys.argv[3]), int(sys.argv[4]), int(data.get("cache_decoded", 0))
print(json.dumps(data_pipeline.measure(data, work, epochs, 32, untimed)))
"""


def measure(data: dict, work: Path, cores: int, epochs: int, timeout: float | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(cores), json.dumps(data), str(work), str(epochs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            JAX_PLATFORMS="cpu",
        ),
        timeout=timeout,
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "jaxvision_data_bench"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated prefixes of case names")
    args = parser.parse_args()
    from benchmarks import data_pipeline

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0))
    print(
        f"{platform.node()}: {cores} cores, load average {os.getloadavg()[0]:.1f}, batch 32, "
        f"{args.epochs} epochs after the first batch, {time.strftime('%Y-%m-%d')}\n"
    )
    print(
        "| pipeline | tf.data, 1 core | grain, 1 core | "
        f"tf.data, {cores} cores | grain, {cores} cores | grain / tf.data, {cores} cores | "
        f"grain decoded once, {cores} cores |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, data in data_pipeline.cases(work).items():
        if args.only and not any(name.startswith(p) for p in args.only.split(",")):
            continue
        for reader in ("tf", "grain"):  # prepared once, outside the timings
            measure(dict(data, reader=reader), work, cores, 0)
        rates = {
            (reader, n): measure(dict(data, reader=reader), work, n, args.epochs)["images_per_s"]
            for n in (1, cores)
            for reader in ("tf", "grain")
        }
        cached = measure(dict(data, reader="grain", cache_decoded=True), work, cores, args.epochs)["images_per_s"]
        row = " | ".join(f"{rates[(reader, n)]:.0f}" for n in (1, cores) for reader in ("tf", "grain"))
        ratio = rates[("grain", cores)] / rates[("tf", cores)]
        print(f"| {name} | {row} | {ratio:.2f} | {cached:.0f} |", flush=True)


if __name__ == "__main__":
    main()
