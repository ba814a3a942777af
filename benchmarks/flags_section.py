"""The XLA:CPU flags section of benchmarks/run.py: jaxvision's step under each flag set that
could become the CPU default, alone and combined, interleaved with PyTorch channels_last.

'default' is what a jaxvision process runs with (jaxvision/cpu_flags.py: YNNPACK's convolutions
off); every other row sets its flags over that. Every flag below exists in the pinned jaxlib
(an unknown XLA flag aborts the worker, so a renamed one shows as a failed row, not a silent
no-op):

  XLA's default  YNNPACK's convolutions back on: XLA:CPU's own default for NHWC float32
                 convolutions
  oneDNN dots    dots (the im2col matmuls of models/cpu_conv.py, the dense layers) to oneDNN
  +eltwise       YNNPACK fuses the elementwise ops around a convolution (bias, ReLU) and takes
                 the convolution with them
  width 512      LLVM's preferred vector width for XLA's own loops (default 256)
  concurrency    XLA:CPU's scheduler that favours running independent ops side by side
  4 KiB pages    not an XLA flag: GLIBC_TUNABLES=glibc.malloc.hugetlb=0, glibc's own default,
                 against launch.sh's hugetlb=1 (malloc asks for transparent huge pages, so large
                 temporaries fault in 2 MiB at a time instead of 4 KiB); PyTorch is timed both ways

'XLA's convolutions' replaces the models' `cpu_conv` rewrites by `lax.conv_general_dilated`
(benchmarks/ablations.py), so XLA chooses every convolution's kernel; 'im2col rewrites' gives
`cpu_conv` its rules before the per-shape table of benchmarks/conv_shapes.py (im2col forwards
and matmul kernel gradients almost everywhere; benchmarks/alternatives.py).
"""

from __future__ import annotations

import importlib.util

from benchmarks.throughput import Case, timing_table

YNN_ON = "--xla_cpu_experimental_ynn_fusion_type=+individual_convolution"
SMALL_PAGES = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}
ONEDNN_DOT = "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=dot"
FLAG_SETS = (
    ("default", {}, "", {}),
    ("XLA's default", {}, YNN_ON, {}),
    ("oneDNN dots", {}, ONEDNN_DOT, {}),
    ("XLA's default + oneDNN dots", {}, f"{YNN_ON} {ONEDNN_DOT}", {}),
    ("+eltwise", {}, "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution,+eltwise", {}),
    ("width 512", {}, "--xla_cpu_prefer_vector_width=512", {}),
    ("concurrency", {}, "--xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_CONCURRENCY_OPTIMIZED", {}),
    (
        "width 512 + concurrency",
        {},
        "--xla_cpu_prefer_vector_width=512 --xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_CONCURRENCY_OPTIMIZED",
        {},
    ),
    ("XLA's convolutions", {"conv": "xla"}, "", {}),
    ("im2col rewrites", {"conv": "im2col"}, "", {}),
    ("4 KiB pages", {}, "", SMALL_PAGES),
)
REFERENCE = "PyTorch channels_last"


def flag_cases(model: str, mode: str, batch: int | None, labels: str = "") -> list[Case]:
    """jaxvision under the default and every flag set (or those `labels` names, comma-separated),
    then PyTorch channels_last when it is installed (also with 4 KiB pages when that set is chosen)."""
    chosen = [f for f in FLAG_SETS if not labels or f[0] == "default" or f[0] in labels.split(",")]
    cases = [
        Case(label, "jaxvision", model, mode, v, xla_flags=flags, env=env, batch=batch)
        for label, v, flags, env in chosen
    ]
    if importlib.util.find_spec("torch") is not None:
        cases.append(Case(REFERENCE, "torch", model, mode, {"channels_last": True}, batch=batch))
        if any(label == "4 KiB pages" for label, *_ in chosen):
            label = f"{REFERENCE}, 4 KiB pages"
            cases.append(Case(label, "torch", model, mode, {"channels_last": True}, env=SMALL_PAGES, batch=batch))
    return cases


def flag_table(model: str, mode: str, results) -> str:
    base = results[0].median
    torch = max((r.median for r in results if r.case.framework == "torch" and not r.error), default=None)
    return timing_table(
        f"XLA:CPU flags: {model} {'training step' if mode == 'train' else 'inference'}, "
        f"batch {results[0].case.images_per_step}",
        ("setting", "XLA_FLAGS", "images/s (median):", "min-max:", "/ default:", "/ fastest PyTorch channels_last:"),
        results,
        lambda r: (r.case.label, f"`{r.case.xla_flags}`" if r.case.xla_flags else ""),
        lambda r: (*r.rate, f"{r.median / base:.2f}", f"{r.median / torch:.2f}" if torch else ""),
    )


def section(models: list[str], args, measure, say) -> dict:
    """Times and prints every model's flag sets (and InceptionV3's inference); returns the raw results."""
    raw = {}
    runs = [(m, "train") for m in models] + ([("inception_v3", "infer")] if "inception_v3" in models else [])
    for model, mode in runs:
        say(f"flags: {model} {mode}")
        cases = flag_cases(model, mode, args.batch, args.flag_sets)
        raw[f"flags/{model}/{mode}"] = measure(cases, args.repeats, args.steps, args.threads, say)
        print(flag_table(model, mode, raw[f"flags/{model}/{mode}"]))
    return raw
