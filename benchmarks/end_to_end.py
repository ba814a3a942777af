"""A run end to end against its train step alone, in images per second of training.

    python -m benchmarks.end_to_end EXPERIMENT.py:VARIANT [--run NAME] [--epochs 3] [--config.key=value ...]

End to end: `train.fit` with its data, evaluation after every epoch and checkpoints, run once
for one epoch and once for --epochs epochs in fresh workdirs; the difference of their wall
clocks over the difference of their training images is the rate once compiled (both runs
compile the same programs, so compilation cancels). Step alone: the same engine's pmapped
train step repeated on one training batch already on the devices, timed after its first call.
The target on an accelerator is end to end >= 90 % of the step alone.

On a host without TensorFlow add `--config.data.reader=grain --config.data.prepared=DIR` (a
copy prepared where TensorFlow is, see README); prints a markdown table row.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from jaxvision import main as cli
from jaxvision import train
from jaxvision.train.run import open_run  # noqa: E402
from jaxvision.train.steps import replicate  # noqa: E402


def load(spec: str, overrides: list[str], run: str = ""):
    config = cli.load_config(spec)
    if "suite" in config:
        if run not in config.runs:
            raise SystemExit(f"{spec} is a suite: name one of its runs with --run ({', '.join(config.suite.order)}).")
        config = config.runs[run]
    config = train.resolve(config)
    for item in overrides:
        key, _, value = item.removeprefix("--config.").partition("=")
        cli.apply_override(config, key, value)
    return train.resolve(config)


def step_alone(config, workdir: str, steps: int) -> float:
    with open_run(config, workdir) as run:
        engine, batch = run.engine, next(iter(run.pipelines.train(0)))
        state, go = replicate(engine.initial_state), replicate(np.float32(1.0))
        vote = np.zeros((jax.local_device_count(),), np.float32)
        state, *_ = engine.train_step(state, batch, vote, go)  # compiles
        jax.block_until_ready(state)
        started = time.perf_counter()
        for _ in range(steps):
            state, _, _, go = engine.train_step(state, batch, vote, go)
        jax.block_until_ready(state)
        return steps * config.batch_size / (time.perf_counter() - started)


def end_to_end(config, work: Path, epochs: int) -> tuple[float, int]:
    """(images/s of training after the first epoch, training images per epoch)."""
    clocks = {}
    for n in (1, epochs):
        run = config.copy_and_resolve_references()
        run.num_epochs, run.early_stopping.patience = n, 0
        started = time.perf_counter()
        result = train.fit(run, str(work / f"epochs{n}"))
        clocks[n] = time.perf_counter() - started
        assert result.status == "finished", result.message
    with open_run(config, str(work / "epochs1"), read_only=True) as opened:
        per_epoch = opened.pipelines.steps_per_epoch * config.batch_size
    return (epochs - 1) * per_epoch / (clocks[epochs] - clocks[1]), per_epoch


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="EXPERIMENT.py:VARIANT")
    parser.add_argument("--run", default="", help="the run of a suite to measure (e.g. dice of the quickstart)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50, help="timed calls of the step alone")
    args, overrides = parser.parse_known_args(argv)
    config = load(args.spec, overrides, args.run)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        alone = step_alone(config, str(work / "step"), args.steps)
        print(f"step alone: {alone:.0f} images/s", flush=True)  # kept if the runs end to end are cut short
        whole, per_epoch = end_to_end(config, work, args.epochs)
    devices = jax.local_devices()
    print("| run | devices | reader | images per epoch | step alone, img/s | end to end, img/s | ratio |")
    print("|---|---|---|---:|---:|---:|---:|")
    name = f"`{args.spec}`{f' run {args.run}' if args.run else ''} {' '.join(overrides)}"
    print(
        f"| {name} | {len(devices)} x {devices[0].device_kind} | "
        f"{config.data.reader} | {per_epoch} | {alone:.0f} | {whole:.0f} | {whole / alone:.2f} |"
    )


if __name__ == "__main__":
    main()
