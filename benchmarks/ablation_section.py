"""The CPU-gap ablations section of benchmarks/run.py: which variants of jaxvision's step are
timed side by side for each model (applied by benchmarks/ablations.py in the worker), and
their table."""

from __future__ import annotations

import importlib.util

from benchmarks.throughput import Case, chosen, timing_table

# The CPU-gap investigation: (label, variant, XLA flags). See ablations.py for the variants.
# 'as is' has models/cpu_conv.py's convolutions and layers.py's max pool and upsampling;
# 'before' is the step with XLA's and flax's own, as it was until they were measured here.
# Attempts that were measured and not taken (bf16, no donation, ...) are in RESULTS.md.
_TWO_DEVICES = ("batch over 2 CPU devices (pmap)", {"devices": 2}, "--xla_force_host_platform_device_count=2")
_BEFORE = {"conv": "xla", "maxpool": "reduce_window", "upsample": "repeat"}
_POOLS_BEFORE = {"overlapping_pool": "reduce_window_forward", "avg_pool": "reduce_window"}
_ONEDNN = ("oneDNN's convolutions (JAXVISION_ONEDNN=1)", {"conv": "onednn"}, "")
_PAPER_B = [
    ("as is", {}, ""),
    ("XLA's convolutions", {"conv": "xla"}, ""),
    _ONEDNN,
    ("max pool: nn.max_pool", {"maxpool": "reduce_window"}, ""),
    ("max pool: reshape + max", {"maxpool": "reshape"}, ""),
    ("before (all three)", _BEFORE, ""),
    _TWO_DEVICES,
]
_UPSAMPLE = [
    ("upsample: jnp.repeat", {"upsample": "repeat"}, ""),
    ("upsample: broadcast", {"upsample": "broadcast"}, ""),
]
ABLATIONS = {
    "autoencoder": [*_PAPER_B, *_UPSAMPLE],
    "segmenter": [*_PAPER_B, *_UPSAMPLE],
    "deep_cnn": [
        *_PAPER_B,
        ("batch norm: nn.BatchNorm, two-pass variance", {"batch_norm": "two_pass"}, ""),
        ("batch norm: nn.BatchNorm, one-pass variance", {"batch_norm": "one_pass"}, ""),
        ("dropout: nn.Dropout (32-bit words)", {"dropout": "flax"}, ""),
    ],
    "inception_v3": [
        ("as is", {}, ""),
        ("XLA's convolutions", {"conv": "xla"}, ""),
        _ONEDNN,
        ("oneDNN's convolutions with 1x1 kernel gradients as matmuls", {"conv": "onednn_matmul_1x1"}, ""),
        ("3x3/2 max pool: nn.max_pool", {"overlapping_pool": "reduce_window"}, ""),
        ("3x3/2 max pool forward: nn.max_pool", {"overlapping_pool": "reduce_window_forward"}, ""),
        ("3x3/2 max pool: strided selects on every platform", {"overlapping_pool": "selects"}, ""),
        ("3x3 avg pool: nn.avg_pool", {"avg_pool": "reduce_window"}, ""),
        ("pools: reduce_window forwards (both)", _POOLS_BEFORE, ""),
        ("batch norm: nn.BatchNorm, two-pass variance", {"batch_norm": "two_pass"}, ""),
        ("before (both)", {"conv": "xla", "overlapping_pool": "reduce_window"}, ""),
        _TWO_DEVICES,
    ],
}


def ablation_cases(model: str, batch: int | None, prefixes: str = "", mode: str = "train") -> list[Case]:
    """The model's variants (of its training step, or of inference) whose labels start with one
    of `prefixes` (all if none), after 'as is', which the table's ratios are against."""
    cases = [
        Case(label, "jaxvision", model, mode, variant, xla_flags=flags, batch=batch)
        for label, variant, flags in ABLATIONS[model]
        if mode == "train" or "devices" not in variant  # inference runs on one device
    ]
    if importlib.util.find_spec("torch") is not None:
        reference = {"channels_last": True}
        cases.append(Case("PyTorch channels_last (reference)", "torch", model, mode, reference, batch=batch))
    return cases[:1] + chosen(cases[1:], prefixes)


def ablation_table(model, results) -> str:
    base, base_cpu = results[0].median, results[0].cpu_median
    return timing_table(
        f"CPU-gap ablations: {model}{'' if results[0].case.mode == 'train' else ' inference'}, "
        f"batch {results[0].case.images_per_step}",
        ("variant", "images/s (median):", "min-max:", "/ as is:", "images per CPU-s:", "/ as is (CPU):"),
        results,
        lambda r: (r.case.label,),
        lambda r: (*r.rate, f"{r.median / base:.2f}", f"{r.cpu_median:.2f}", f"{r.cpu_median / base_cpu:.2f}"),
    )


def section(args, measure, say) -> dict:
    """Times and prints the ablations of every model in `args.ablation_models`; returns the raw results."""
    raw = {}
    for model in args.ablation_models.split(","):
        say(f"ablations: {model}")
        cases = ablation_cases(model, args.batch, args.cases, args.ablation_mode)
        raw[f"ablations/{model}"] = measure(cases, args.repeats, args.steps, args.threads, say)
        print(ablation_table(model, raw[f"ablations/{model}"]))
    return raw
