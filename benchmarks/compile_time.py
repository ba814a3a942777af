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


def experiment_config(name: str):
    """The resolved config of `name` (see CONFIGS) without its data section: the engine reads
    only the data's shapes, given by `measure` (reading the data would load TensorFlow)."""
    import ml_collections

    from jaxvision.train.config import resolve

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
    n = config.model.num_classes
    info = types.SimpleNamespace(
        name="dummy", image_shape=(size, size, 3), num_classes=n, multi_label=False, has_mask=False
    )
    engine = build_engine(config, info, steps_per_epoch=1, devices=jax.local_devices()[:1])
    b = config.batch_size
    batch = {
        "image": np.zeros((1, b, size, size, 3), np.float32),
        "label": np.eye(n, dtype=np.float32)[np.arange(b) % n][None],
        "valid": np.ones((1, b), np.float32),
    }
    args = (replicate(engine.initial_state), batch, np.zeros((1,), np.float32), np.ones((1,), np.float32))
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
    parser.add_argument("--timeout", type=float, default=600, help="seconds per compile before giving up")
    parser.add_argument("--steps", type=int, default=0, help="also time this many steps after compiling")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # 'config:size', the child process
    args = parser.parse_args()
    if args.one:
        name, size = args.one.split(":")
        print(json.dumps(measure(name, int(size), args.steps)))
        return
    timed = " step (s) | img/s | peak RSS (GB) |" if args.steps else ""
    header = "| config | size | lower (s) | compile (s) | HLO instructions | fusions | largest array (MB) | temp (MB) |"
    print(header + timed)
    print("|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * (3 if args.steps else 0))
    for size in map(int, args.sizes.split(",")):
        for name in args.configs.split(","):
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
                print(f"| {name} | {size} | | > {args.timeout:.0f} (stopped) | | | | |", flush=True)
                continue
            if proc.returncode:
                print(f"| {name} | {size} | failed: {proc.stderr.strip().splitlines()[-1]} | | | | | |", flush=True)
                continue
            r = json.loads(proc.stdout.splitlines()[-1])
            print(
                f"| {name} | {size} | {r['lower_s']:.1f} | {r['compile_s']:.1f} | {r['instructions']} | "
                f"{r['fusions']} | {r['largest_mb']:.0f} | {r['temp_mb']:.0f} |"
                + (f" {r['step_s']:.2f} | {r['img_per_s']:.2f} | {r['peak_rss_gb']:.1f} |" if args.steps else ""),
                flush=True,
            )


if __name__ == "__main__":
    main()
