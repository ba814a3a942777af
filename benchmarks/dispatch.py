"""Steps dispatched one by one against an epoch's steps in one dispatch (`config.steps_per_dispatch`).

    python -m benchmarks.dispatch [--rounds 5] [--steps 76]     prints a markdown table

The step of experiments/flowers_real.py's Oxford-102 head: InceptionV3's whole state (random
weights; the shapes are what count), its backbone frozen, trained on pooled features `[32, 2048]`
with 102 classes, BCE on the softmax, Adamax. Each round runs `--steps` steps (an epoch of the
head) both ways, interleaved, on the same batches: `engine.train_step` dispatched per step with
its metrics read as the loop reads them, and `engine.train_steps` once over the stacked batches.
Reported: milliseconds per step (median, min and max of the rounds) and the largest difference
of the final head weights between the two ways.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import numpy as np

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _engine():
    from jaxvision.configs import load_config
    from jaxvision.data.batches import DatasetInfo
    from jaxvision.train import resolve
    from jaxvision.train.engine import build_engine

    config = load_config(os.path.join(HERE, "experiments", "flowers_real.py:flowers102"))
    config.init.imagenet = ""  # random weights: the same shapes, no download
    del config["data"]  # the batches are made here
    config = resolve(config)
    classes = config.model.num_classes
    info = DatasetInfo("features", classes, tuple(map(str, range(classes))), (299, 299, 3), {}, False, False)
    return config, build_engine(config, info, 76)


def _batches(steps: int, batch: int, classes: int) -> list[dict[str, np.ndarray]]:
    d, rng = jax.local_device_count(), np.random.default_rng(0)
    per = batch // d
    return [
        {
            "image": rng.normal(size=(d, per, 2048)).astype(np.float32),
            "label": np.eye(classes, dtype=np.float32)[rng.integers(0, classes, (d, per))],
            "valid": np.ones((d, per), np.float32),
        }
        for _ in range(steps)
    ]


def _one_by_one(engine, state, batches, vote, go):
    for batch in batches:
        state, metrics, _, go = engine.train_step(state, batch, vote, go)
        jax.device_get(metrics)
    return state


def _at_once(engine, state, batches, vote, go):
    stacked = jax.tree.map(lambda *xs: np.stack(xs, axis=1), *batches)
    state, metrics, _, _ = engine.train_steps(state, stacked, vote, go)
    jax.device_get(metrics)
    return state


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=76, help="steps of one epoch (the Oxford-102 head's: 76)")
    args = parser.parse_args(argv)

    from jaxvision.train.steps import replicate

    config, engine = _engine()
    batches = _batches(args.steps, config.batch_size, config.model.num_classes)
    vote = np.zeros((jax.local_device_count(),), np.float32)
    ways = {"one by one (steps_per_dispatch=1)": _one_by_one, "an epoch at once (steps_per_dispatch>=76)": _at_once}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    finals = {}
    for r in range(args.rounds + 1):  # round 0 compiles
        for name, way in ways.items():
            state, go = replicate(engine.initial_state), replicate(np.float32(1.0))
            started = time.perf_counter()
            state = jax.block_until_ready(way(engine, state, batches, vote, go))
            if r:
                seconds[name].append(time.perf_counter() - started)
            finals[name] = jax.device_get(state.params["predictions"]["kernel"][0])
    a, b = finals.values()
    print(
        f"{args.steps} steps of the Oxford-102 head on cached features, batch {config.batch_size}, "
        f"{args.rounds} rounds\n"
    )
    print("| dispatch | ms per step (median) | min | max |\n|---|---:|---:|---:|")
    for name, found in seconds.items():
        ms = [1e3 * s / args.steps for s in found]
        print(f"| {name} | {statistics.median(ms):.2f} | {min(ms):.2f} | {max(ms):.2f} |")
    print(f"\nLargest difference of the head's final kernel between the two: {np.max(np.abs(a - b)):.3g}")


if __name__ == "__main__":
    main()
