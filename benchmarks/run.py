"""jaxvision against Keras 3 (JAX backend) and PyTorch on the same models: `./launch.sh bench`.

    python -m benchmarks.run [--quick] [--models autoencoder,segmenter,deep_cnn,inception_v3]
        [--sections train,infer,flops,pmap,compile,pipeline,ablations,flags] [--repeats N] [--steps N]
        [--threads N] [--batch N] [--peers auto|cpu|accelerator] [--cases PREFIXES] [--json FILE]
        [--ablation-models MODELS] [--ablation-mode train|infer]

Sections (default: all but ablations):
  train      training-step images/s (median of rounds, cases interleaved), peak memory and
             the first step's time (compiling): jaxvision, Keras-JAX, PyTorch NCHW and
             channels_last; with accelerator peers, jaxvision also in bf16 and PyTorch
             channels_last eager f32, eager AMP bf16 and torch.compile'd AMP bf16
  infer      InceptionV3 inference images/s, the same frameworks
  flops      each jaxvision step's achieved FLOP/s as a fraction of the measured matmul peak
             of its dtype (float32; with accelerator peers also bfloat16)
  pmap       4 simulated CPU devices against 1 on the same global batch
  compile    start-up (build + compile + first step), cold and with the persistent cache
  pipeline   each dataset pipeline's images/s against its model's step (needs TensorFlow)
  layers     the autoencoder's heaviest ops, XLA against PyTorch (milliseconds)
  ablations  the CPU-gap investigation: jaxvision variants and XLA flags, interleaved, of the
             training step (or of inference: --ablation-mode infer)
  flags      each XLA:CPU flag set that could be the CPU default (benchmarks/flags_section.py),
             alone and combined, on each model's training step and InceptionV3's inference,
             against PyTorch channels_last in the same interleaved rounds (--flag-sets picks some)
Peers whose framework is not installed are skipped with a note. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys

from benchmarks import ablation_section, compile_time, flags_section, flops, layers
from benchmarks.machine import accelerator_present, available, cpu_name, versions
from benchmarks.specs import SPECS
from benchmarks.throughput import Case, chosen, markdown_table, measure, run_child, timing_table
from jaxvision.models import onednn_conv

SECTIONS = ("train", "infer", "flops", "pmap", "compile", "pipeline", "layers", "ablations", "flags")
PEERS = {"keras": "Keras 3 (JAX)", "torch": "PyTorch"}


def header(args) -> str:
    packages = versions(("jax", "jaxlib", "flax", "optax", "keras", "torch"))
    return (
        f"# jaxvision benchmarks, {datetime.date.today()}\n\n"
        f"{platform.node()}: {cpu_name()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at start; Python {platform.python_version()}; {packages}; "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; "
        f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')!r}; threads {args.threads}; "
        f"{args.repeats} rounds x {args.steps} steps after warm-up.\n"
    )


def framework_cases(model: str, mode: str, batch: int | None, peers: str = "cpu") -> tuple[list[Case], list[str]]:
    """jaxvision and its peers on `model`. 'cpu' peers: float32, PyTorch eager in both layouts;
    'accelerator' peers: jaxvision also in bfloat16 (config.half_precision), PyTorch channels_last
    eager in float32 and under AMP bf16, and compiled (torch.compile) under AMP bf16."""
    cases, notes = [Case("jaxvision", "jaxvision", model, mode, batch=batch)], []
    if peers == "cpu" and onednn_conv.missing() is None:
        cases.append(Case("jaxvision + oneDNN", "jaxvision", model, mode, env={onednn_conv.SWITCH: "1"}, batch=batch))
    elif peers == "cpu":
        notes.append(f"jaxvision + oneDNN skipped: {onednn_conv.missing()}.")
    if peers == "accelerator":
        cases.append(Case("jaxvision bf16", "jaxvision", model, mode, {"half_precision": True}, batch=batch))
    if available("keras"):
        cases.append(Case("Keras 3 (JAX)", "keras", model, mode, batch=batch))
    else:
        notes.append("Keras is not installed: skipped.")
    torch_variants = {
        "cpu": {"PyTorch NCHW": {}, "PyTorch channels_last": {"channels_last": True}},
        "accelerator": {
            "PyTorch channels_last": {"channels_last": True},
            "PyTorch channels_last AMP bf16": {"channels_last": True, "amp": True},
            "PyTorch compiled, channels_last AMP bf16": {"channels_last": True, "amp": True, "compile": True},
        },
    }[peers]
    if available("torch"):
        cases += [Case(label, "torch", model, mode, variant, batch=batch) for label, variant in torch_variants.items()]
    else:
        notes.append("PyTorch is not installed: skipped.")
    return cases, notes


def mb(result) -> str:
    m = result.memory.get("peak_mb")
    return f"{m:.0f} ({result.memory['memory_kind']})" if m is not None else ""


def throughput_table(results, title: str) -> str:
    groups = _by_model(results)
    ours = {model: group[0] for model, group in groups.items()}  # the first case of a model is jaxvision's

    def numbers(r) -> tuple[str, ...]:
        wall, cpu = ours[r.case.model].median, ours[r.case.model].cpu_median
        first_step = r.info.get("first_step_s", float("nan"))
        return (
            *r.rate,
            f"{wall / r.median:.2f}",
            f"{r.cpu_median:.2f}",
            f"{cpu / r.cpu_median:.2f}",
            mb(r),
            f"{first_step:.1f}",
        )

    return timing_table(
        title,
        ("model", "framework", "batch:", "images/s (median):", "min-max:", "jaxvision / this:", "images per CPU-s:")
        + ("jaxvision / this (CPU):", "peak memory MB:", "first step s (compiling):"),
        [r for group in groups.values() for r in group],
        lambda r: (r.case.model, r.case.label, str(r.case.images_per_step)),
        numbers,
    )


def summary_table(results) -> str:
    rows = []
    for model, group in _by_model(results).items():
        ours = [r for r in group if r.case.framework == "jaxvision" and r.images_per_s]
        peers = [r for r in group if r.case.framework != "jaxvision" and r.images_per_s]
        if not peers or not ours:
            continue
        mine, best = (max(rs, key=lambda r: r.median) for rs in (ours, peers))
        rows.append(
            (model, f"{mine.median:.2f} ({mine.case.label})", best.case.label, f"{best.median:.2f}")
            + (f"{mine.median / best.median:.2f}",)
        )
    columns = ("model", "fastest jaxvision images/s:", "fastest peer", "its images/s:", "jaxvision / fastest peer:")
    return markdown_table("jaxvision against the faster peer", columns, rows)


def _by_model(results):
    groups = {}
    for r in results:
        groups.setdefault(r.case.model, []).append(r)
    return groups


def flops_table(train_results, peak: dict) -> str:
    """Each jaxvision case's achieved GFLOP/s, as a fraction of the best matmul peak of its dtype."""
    best = {
        d: max((v for k, v in peak.items() if k.endswith(d)), default=float("nan")) for d in ("float32", "bfloat16")
    }
    rows = []
    for r in train_results:
        if r.case.framework != "jaxvision" or not r.images_per_s or not r.info.get("flops_per_step"):
            continue
        gflop = r.info["flops_per_step"] / 1e9
        steps_per_s = r.median / r.case.images_per_step
        dtype = "bfloat16" if r.case.variant.get("half_precision") else "float32"
        rows.append(
            (r.case.model, r.case.label, f"{gflop:.1f}", f"{steps_per_s:.3f}", f"{gflop * steps_per_s:.1f}")
            + (f"{gflop * steps_per_s / best[dtype]:.2f}",)
        )
    return markdown_table(
        "Achieved FLOP/s (peaks: matmul 2048^3, " + ", ".join(f"{k} {v:.1f}" for k, v in peak.items()) + " GFLOP/s)",
        ("model", "case", "GFLOP per step (convs + matmuls):", "steps/s:", "achieved GFLOP/s:", "of its dtype's peak:"),
        rows,
    )


def pmap_section(models, repeats) -> str:
    rows = []
    devices = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"
    for model in models:
        proc = run_child("-m", "benchmarks.pmap_overhead", model, str(repeats), JAX_PLATFORMS="cpu", XLA_FLAGS=devices)
        if proc.returncode:
            rows.append((model, f"failed: {proc.stderr.strip().splitlines()[-1]}", "", "", ""))
            continue
        rates = {int(k): statistics.median(v) for k, v in json.loads(proc.stdout.splitlines()[-1]).items()}
        rows.append((model, SPECS[model].batch, f"{rates[1]:.2f}", f"{rates[4]:.2f}", f"{rates[4] / rates[1]:.2f}"))
    return markdown_table(
        "pmap: 4 simulated CPU devices against 1, same global batch",
        ("model", "global batch:", "1 device images/s:", "4 devices images/s:", "4 / 1:"),
        rows,
    )


def compile_section(models, threads) -> str:
    rows = []
    for model in models:
        t = compile_time.start_times(model, threads)
        rows.append((model, f"{t['cold']:.1f}", f"{t['cached']:.1f}", f"{t['step']:.2f}"))
    return markdown_table(
        "Start-up: build + compile + first step (s)",
        ("model", "cold:", "persistent cache (second start):", "one later step:"),
        rows,
    )


def pipeline_section(train_results, epochs) -> str:
    if not available("tensorflow"):
        return "\n## Input pipelines\n\nTensorFlow is not installed: skipped."
    proc = run_child("-m", "benchmarks.pipeline_rate", str(epochs))
    if proc.returncode:
        return f"\n## Input pipelines\n\nfailed: {proc.stderr.strip()[-500:]}"
    step = {r.case.model: r.median for r in train_results if r.case.framework == "jaxvision" and r.images_per_s}
    rows = []
    for name, p in json.loads(proc.stdout.splitlines()[-1]).items():
        for model in p["models"]:
            used = step.get(model)
            ratio = f"{p['images_per_s'] / used:.1f}" if used else ""
            rows.append(
                (name, f"{p['images_per_s']:.0f}", f"{p['images_per_cpu_s']:.0f}", model, f"{used or float('nan'):.2f}")
                + (ratio,)
            )
    columns = ("pipeline", "images/s:", "images per CPU-second:", "model", "its step consumes images/s:")
    return markdown_table("Input pipelines against the training step", columns + ("pipeline / step:",), rows)


def _write_json(path: str, raw: dict) -> None:
    fields = ("images_per_s", "images_per_cpu_s", "info", "memory", "error")
    rows = {
        k: [{"label": r.case.label, "model": r.case.model, **{f: getattr(r, f) for f in fields}} for r in v]
        for k, v in raw.items()
    }
    with open(path, "w") as f:
        json.dump(rows, f, indent=1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 1 step; pmap/compile on the segmenter only")
    parser.add_argument("--models", default=",".join(SPECS))
    parser.add_argument(
        "--sections",
        default=",".join(s for s in SECTIONS if s not in ("layers", "ablations", "flags")),
        help=f'comma-separated, from {", ".join(SECTIONS)}, or "all"',
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case (default 5, quick 3)")
    parser.add_argument("--steps", type=int, default=None, help="steps per round (default 2, quick 1)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch intra-op threads")
    parser.add_argument(
        "--peers",
        choices=("auto", "cpu", "accelerator"),
        default="auto",
        help="the peer set: 'accelerator' adds bf16 and torch.compile cases (auto: when jax sees a GPU or TPU)",
    )
    parser.add_argument("--batch", type=int, default=None, help="override every model's batch (default: the paper's)")
    parser.add_argument(
        "--cases",
        default="",
        help="comma-separated prefixes of the case labels to time (default: all; ablations keep 'as is')",
    )
    parser.add_argument("--ablation-models", default=",".join(ablation_section.ABLATIONS))
    parser.add_argument(
        "--ablation-mode", choices=("train", "infer"), default="train", help="ablate the training step or inference"
    )
    parser.add_argument(
        "--flag-sets", default="", help="flags section: the labels of the flag sets to time, comma-separated"
    )
    parser.add_argument("--json", default="", help="also write the raw results here")
    return parser


def main(argv=None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.peers == "auto":
        args.peers = "accelerator" if accelerator_present() else "cpu"
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.steps = args.steps or (1 if args.quick else 2)
    sections = SECTIONS if args.sections == "all" else tuple(args.sections.split(","))
    unknown = set(sections) - set(SECTIONS) | set(args.models.split(",")) - set(SPECS)
    if unknown:
        parser.error(f"unknown sections or models: {sorted(unknown)}")
    models = args.models.split(",")
    say = lambda s: print(s, file=sys.stderr, flush=True)
    print(header(args))
    raw, train_results = {}, []

    if "train" in sections or "flops" in sections:
        for model in models:
            say(f"train: {model}")
            cases, notes = framework_cases(model, "train", args.batch, args.peers)
            train_results += measure(chosen(cases, args.cases), args.repeats, args.steps, args.threads, say)
        print(throughput_table(train_results, "Training step (forward + backward + optimizer update)"))
        print(summary_table(train_results))
        print("".join(f"\n{n}" for n in notes))
        raw["train"] = train_results
    if "infer" in sections:
        say("infer: inception_v3")
        cases, _ = framework_cases("inception_v3", "infer", args.batch, args.peers)
        raw["infer"] = measure(chosen(cases, args.cases), args.repeats, args.steps, args.threads, say)
        print(throughput_table(raw["infer"], "Inference (InceptionV3, train=False)"))
    if "flops" in sections:
        say("flops: matmul peak")
        dtypes = ("float32", "bfloat16") if args.peers == "accelerator" else ("float32",)
        print(flops_table(train_results, flops.matmul_peak(2048, args.threads, dtypes)))
    small = ["segmenter"] if args.quick else models
    if "pmap" in sections:
        say("pmap")
        print(pmap_section(small, args.repeats))
    if "compile" in sections:
        say("compile")
        print(compile_section(small, args.threads))
    if "pipeline" in sections:
        say("pipeline")
        print(pipeline_section(train_results, 1 if args.quick else 2))
    if "layers" in sections:
        say("layers")
        print(layers.section(args.batch or 8, args.threads))
    if "flags" in sections:
        raw.update(flags_section.section(models, args, measure, say))
    if "ablations" in sections:
        raw.update(ablation_section.section(args, measure, say))
    if args.json:
        _write_json(args.json, raw)


if __name__ == "__main__":
    main()
