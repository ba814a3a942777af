"""What the host costs around the steps: the training loop's reading of metrics, tf.data's autotuner.

    python -m benchmarks.host_loop [--epochs 4] [--rounds 2]     prints markdown tables

1. The quickstart's BCE segmenter (experiments/quickstart.py, 64x64, batch 16) trained by
   `train.fit` itself, with the loop reading each step's metrics and stop votes as soon as it
   dispatched the step (`STEPS_IN_FLIGHT = 0`, the loop before this benchmark) and two steps
   later (`STEPS_IN_FLIGHT = 2`, the loop now). Reported: the median epoch's seconds (the
   first epoch, which compiles, left out), rounds interleaved.
2. The same run's training pipeline alone, read by a consumer that keeps the host busy for
   50 ms per batch as a step does, with tf.data's autotuner on and off: seconds per epoch and
   how many batches waited over 0.3 s.
3. Every dataset pipeline of benchmarks/data_pipeline.py, read alone as fast as it goes (its
   `measure`), autotuner on and off, rounds interleaved: images/s, median of the rounds.

Needs TensorFlow and the embedded dataset (made on first use); part 3 also builds the synthetic
VOCdevkit and reads the real Flowers photos of ../shared/data when present.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402

from benchmarks import data_pipeline  # noqa: E402
from jaxvision import train  # noqa: E402
from jaxvision.data import pipeline  # noqa: E402
from jaxvision.configs import load_config  # noqa: E402
from jaxvision.train import loop  # noqa: E402

QUICKSTART = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments", "quickstart.py")


def _segmenter(epochs: int):
    config = train.resolve(load_config(QUICKSTART).runs.bce)
    config.num_epochs = epochs
    return config


def _epoch_seconds(config, in_flight: int) -> list[float]:
    loop.STEPS_IN_FLIGHT = in_flight
    with tempfile.TemporaryDirectory() as workdir:
        train.fit(config, workdir)
        with open(os.path.join(workdir, "metrics.jsonl")) as f:
            rows = [json.loads(line) for line in f]
    return [r["epoch_seconds"] for r in rows if r.get("split") == "train"][1:]


def _busy(seconds: float) -> None:
    end, x = time.time() + seconds, np.ones((256, 256))
    while time.time() < end:
        x = x @ x * 1e-3


def _pipeline_epochs(config, autotune: bool, epochs: int) -> tuple[list[float], int]:
    pipeline.TF_DATA_AUTOTUNE = autotune
    pipelines = pipeline.make_pipelines(config)
    seconds, stalls = [], 0
    for epoch in range(epochs):
        started = last = time.time()
        for _ in pipelines.train(epoch):
            stalls += epoch > 0 and last > started and time.time() - last > 0.3
            _busy(0.05)
            last = time.time()
        seconds.append(time.time() - started)
    return seconds[1:], stalls


def _datasets(rounds: int) -> dict[str, dict[bool, list[float]]]:
    work = Path(tempfile.gettempdir()) / "jaxvision_data_bench"
    rates: dict[str, dict[bool, list[float]]] = {}
    for name, data in data_pipeline.cases(work).items():
        for _ in range(rounds):
            for autotune in (True, False):
                pipeline.TF_DATA_AUTOTUNE = autotune
                rate = data_pipeline.measure(data, work, 2, 32)["images_per_s"]
                rates.setdefault(name, {True: [], False: []})[autotune].append(rate)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    config = _segmenter(args.epochs)
    steps = {0: [], 2: []}
    for _ in range(args.rounds):
        for in_flight in steps:
            steps[in_flight] += _epoch_seconds(config, in_flight)
    read = {}
    for _ in range(args.rounds):
        for autotune in (True, False):
            seconds, stalls = _pipeline_epochs(config, autotune, args.epochs)
            old = read.get(autotune, ([], 0))
            read[autotune] = (old[0] + seconds, old[1] + stalls)
    rates = _datasets(args.rounds)
    per_epoch = config.num_epochs - 1
    print(f"Quickstart BCE segmenter, {args.rounds} rounds x {per_epoch} epochs (first epoch left out)\n")
    print("| the loop reads a step's metrics | median epoch (s) | min | max |\n|---|---:|---:|---:|")
    for in_flight, label in ((0, "at once (before)"), (2, "2 steps later (now)")):
        s = steps[in_flight]
        print(f"| {label} | {statistics.median(s):.2f} | {min(s):.2f} | {max(s):.2f} |")
    print("\n| tf.data autotuner | median epoch (s) | min | max | batches that waited > 0.3 s |")
    print("|---|---:|---:|---:|---:|")
    for autotune, label in ((True, "on (before)"), (False, "off (now)")):
        s, stalls = read[autotune]
        print(f"| {label} | {statistics.median(s):.2f} | {min(s):.2f} | {max(s):.2f} | {stalls} in {len(s)} epochs |")
    print("\n| pipeline alone, batch 32 | images/s, autotuner on | off |\n|---|---:|---:|")
    for name, found in rates.items():
        print(f"| {name} | {statistics.median(found[True]):.0f} | {statistics.median(found[False]):.0f} |")


if __name__ == "__main__":
    main()
