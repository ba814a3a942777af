"""Compile time: start-up cost, and the cold compile of each experiment's training step.

`start_times`: build + compile + first step, cold and with JAX's persistent compilation cache.
Two fresh worker processes share a new cache directory: the first compiles and fills it, the
second (a "second start", e.g. a resumed run) reads the compiled step back.

`python -m benchmarks.compile_time`: the seconds XLA takes to lower and to compile the pmapped
training step that `train.fit` builds (`engine.build_engine` on the resolved config, one
device), for the benchmark's InceptionV3 and for paper A's fine-tuning configs, at a few image
sizes, each in a fresh process with the persistent cache off, so every compile is cold:

    python -m benchmarks.compile_time [--sizes 75,139,224,299] [--configs bench,finetune,...]
        [--timeout 600] [--steps N]

With `--steps N` each process then runs N steps of the compiled program and adds the median
step's seconds, its images per second and the process's peak resident memory: what a
fine-tuning epoch costs at that size.

    python -m benchmarks.compile_time --experiments [--timeout 600]

compiles, the same way, every distinct training step that the runs of `experiments/*.py` train
(each variant of each file, suites' runs included), at the run's own image size and batch, and
names the runs that share it. Heads on cached features train a dense layer on the backbone's
outputs, not this step, and are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
import types

from benchmarks.throughput import ROOT, Case, Worker, run_child

# `finetune` as `train.fit` runs it where Keras's weight file is absent: the head it starts from
# was trained on the 2015 ImageNet weights, so `warmstart.bind` gives it `last_pool='max'`.
# Then one difference from it at a time, and the benchmark's own step, `bench`.
CONFIGS = (
    "bench",
    "finetune",
    "finetune_avg_pool",
    "finetune_bn",
    "finetune_one_lr",
    "finetune_b32",
    "finetune_xla_conv",
)
_BYTES = {"f32": 4, "s32": 4, "u32": 4, "pred": 1, "bf16": 2, "f64": 8}


def start_times(model: str, threads: int) -> dict[str, float]:
    """{'cold': s, 'cached': s, 'step': s}: build + first step of each start, and one later step."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {"JAX_COMPILATION_CACHE_DIR": cache, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
        for start in ("cold", "cached"):
            worker = Worker(Case(start, "jaxvision", model, env=env), threads)
            try:
                info = worker.ask()
                out[start] = info["build_s"] + info["first_step_s"]
                out["step"] = worker.ask({"steps": 1})["seconds"]
            finally:
                worker.close()
    return out


# What the compiler sees of a run (with its image shape); the rest of its config (files,
# epochs, reports, seeds) does not change the program.
_PROGRAM_FIELDS = ("task", "loss", "model", "optimizer", "batch_size", "half_precision")


def _variants(path: str):
    """(spec, config) of every variant of the experiment file `path`, its default first where
    VARIANTS leaves it out (the quickstart)."""
    import inspect
    import runpy

    from jaxvision.configs import load_config

    module = runpy.run_path(path)
    default = inspect.signature(module["get_config"]).parameters["variant"].default
    for variant in (() if default in module["VARIANTS"] else (default,)) + tuple(module["VARIANTS"]):
        spec = f"{os.path.relpath(path, ROOT)}:{variant}" if variant else os.path.relpath(path, ROOT)
        yield spec, load_config(f"{path}:{variant}" if variant else path)


def experiment_steps() -> dict[str, list[str]]:
    """Every distinct network training step of the experiments: 'FILE:VARIANT/RUN' of the first
    run that trains it -> every run that does (a variant without runs is its own run)."""
    import glob

    from jaxvision.train.config import resolve

    steps: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "experiments", "[!_]*.py"))):
        for spec, config in _variants(path):
            runs = config.runs.items() if "runs" in config else [("", config)]
            for run_name, run in runs:
                if run.get("kind") or run.get("cache_features") or "model" not in run:
                    continue
                run = resolve(run)
                shape = (run.data.image_size, 1 if run.data.grayscale else 3)
                key = json.dumps([shape] + [run.get(f) for f in _PROGRAM_FIELDS], sort_keys=True, default=str)
                label = f"{spec}/{run_name}" if run_name else spec
                first.setdefault(key, label)
                steps.setdefault(first[key], []).append(label)
    return steps


def experiment_config(name: str):
    """The resolved config of `name` (see CONFIGS, or a label of `experiment_steps`) without its
    data section but for its image shape: the engine reads only the data's shapes, given by
    `measure` (reading the data would load TensorFlow)."""
    import ml_collections

    from jaxvision.configs import load_config
    from jaxvision.train.config import resolve

    if ".py" in name:
        path, _, rest = name.partition(".py")
        variant, _, run_name = rest.partition("/")
        config = load_config(os.path.join(ROOT, path + ".py" + variant))
        config = resolve(config.runs[run_name] if run_name else config)
        shape = {"image_size": config.data.image_size, "grayscale": config.data.grayscale}
        config = ml_collections.ConfigDict({k: v for k, v in config.items() if k != "data"})
        config.data = shape
        return config
    if name == "bench":
        from benchmarks.jaxvision_side import config_for
        from benchmarks.specs import SPECS

        return config_for(SPECS["inception_v3"])
    from jaxvision.configs import load_config

    suite = load_config(os.path.join(ROOT, "experiments", "flowers_real.py:flowers102_finetune"))
    config = suite.runs.finetune
    config.model.train_batch_norm = name == "finetune_bn"
    if name == "finetune_one_lr":
        config.optimizer.backbone_lr_scale = 1.0
    if name == "finetune_b32":
        config.batch_size = 32
    config.model.last_pool = "avg" if name == "finetune_avg_pool" else "max"
    config = ml_collections.ConfigDict({k: v for k, v in config.items() if k != "data"})
    return resolve(config)


def _hlo_summary(text: str) -> dict:
    """Instructions, fusions and the largest array (MB) of an optimized HLO module."""
    largest = 0
    for dtype, dims in re.findall(r"\b(f32|s32|u32|pred|bf16|f64)\[([\d,]+)\]", text):
        n = 1
        for d in dims.split(","):
            n *= int(d)
        largest = max(largest, n * _BYTES[dtype])
    return {
        "instructions": len(re.findall(r"^\s+(?:ROOT )?%?[\w.\-]+ = ", text, re.M)),
        "fusions": len(re.findall(r"^\s+(?:ROOT )?%?[\w.\-]+ = .*\bfusion\(", text, re.M)),
        "largest_mb": largest / 2**20,
    }


def measure(name: str, size: int, steps: int = 0) -> dict:
    """Lower and compile `name`'s pmapped train step at `size` on one device (call in a fresh process)."""
    import jax
    import numpy as np

    jax.config.update("jax_enable_compilation_cache", False)
    if name == "finetune_xla_conv":
        from jax import lax

        from jaxvision.models import inception_v3

        inception_v3.conv_general_dilated = lax.conv_general_dilated
    from jaxvision.train.engine import build_engine
    from jaxvision.train.steps import replicate

    config = experiment_config(name)
    channels = 3
    if "data" in config:  # an experiment's run, at its own size
        size, channels = config.data.image_size, 1 if config.data.grayscale else 3
    n = config.model.get("num_classes", 1)
    info = types.SimpleNamespace(
        name="dummy",
        image_shape=(size, size, channels),
        num_classes=n,
        multi_label=config.task == "multilabel",
        has_mask=config.task == "segmentation",
    )
    devices = jax.local_devices()[:1]
    engine = build_engine(config, info, steps_per_epoch=1, devices=devices)
    b = config.batch_size
    batch = {
        "image": np.zeros((1, b, size, size, channels), np.float32),
        "label": np.eye(n, dtype=np.float32)[np.arange(b) % n][None],
        "mask": np.zeros((1, b, size, size, 1), np.float32),
        "valid": np.ones((1, b), np.float32),
    }
    batch = {k: v for k, v in batch.items() if k in ("image", "valid", engine.task.target)}
    args = (replicate(engine.initial_state, devices), batch, np.zeros((1,), np.float32), np.ones((1,), np.float32))
    started = time.perf_counter()
    lowered = engine.train_step.lower(*args)
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    done = time.perf_counter()
    memory = compiled.memory_analysis()
    timed = {}
    if steps:
        import resource

        seconds = []
        state = args[0]
        for _ in range(steps):
            began = time.perf_counter()
            out = jax.block_until_ready(compiled(state, *args[1:]))
            state = out[0]
            seconds.append(time.perf_counter() - began)
        step_s = float(np.median(seconds))
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
        timed = {"step_s": step_s, "img_per_s": b / step_s, "peak_rss_gb": peak_gb}
    return {
        "config": name,
        "size": size,
        "lower_s": lowered_at - started,
        "compile_s": done - lowered_at,
        "temp_mb": getattr(memory, "temp_size_in_bytes", 0) / 2**20,
        **_hlo_summary(compiled.as_text()),
        **timed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="75,139,224,299")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--experiments", action="store_true", help="every experiment's steps at their own sizes")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per compile before giving up")
    parser.add_argument("--steps", type=int, default=0, help="also time this many steps after compiling")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # 'config:size', the child process
    args = parser.parse_args()
    if args.one:
        name, _, size = args.one.rpartition(":")
        print(json.dumps(measure(name, int(size), args.steps)))
        return
    if args.experiments:
        shared = experiment_steps()
        jobs = [(name, 0) for name in shared]
    else:
        jobs = [(name, size) for size in map(int, args.sizes.split(",")) for name in args.configs.split(",")]
    timed = " step (s) | img/s | peak RSS (GB) |" if args.steps else ""
    header = "| config | size | lower (s) | compile (s) | HLO instructions | fusions | largest array (MB) | temp (MB) |"
    print(header + timed)
    print("|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * (3 if args.steps else 0))
    for name, size in jobs:
        shown = f"| {name} | {size or ''} |"
        try:
            proc = run_child(
                "-m",
                "benchmarks.compile_time",
                "--one",
                f"{name}:{size}",
                "--steps",
                str(args.steps),
                timeout=args.timeout,
            )
        except subprocess.TimeoutExpired:
            print(f"{shown} | > {args.timeout:.0f} (stopped) | | | | |", flush=True)
            continue
        if proc.returncode:
            print(f"{shown} failed: {proc.stderr.strip().splitlines()[-1]} | | | | | |", flush=True)
            continue
        r = json.loads(proc.stdout.splitlines()[-1])
        print(
            f"| {name} | {r['size']} | {r['lower_s']:.1f} | {r['compile_s']:.1f} | {r['instructions']} | "
            f"{r['fusions']} | {r['largest_mb']:.0f} | {r['temp_mb']:.0f} |"
            + (f" {r['step_s']:.2f} | {r['img_per_s']:.2f} | {r['peak_rss_gb']:.1f} |" if args.steps else ""),
            flush=True,
        )
    if args.experiments:
        print("\n| step | the runs that train it |\n|---|---|")
        for name, runs in shared.items():
            print(f"| {name} | {', '.join(runs)} |")


if __name__ == "__main__":
    main()
