"""The variants of jaxvision's step that the CPU-gap investigation times side by side.

A variant is a dict applied inside a fresh worker process before the model is built:

  conv='xla'             the models' convolutions with XLA's own kernel gradient
                         (`lax.conv_general_dilated` instead of `models.cpu_conv`'s)
  conv='im2col'          `models.cpu_conv` with its earlier im2col rules
                         (`alternatives.lowering_im2col`)
  conv='onednn'          JAXVISION_ONEDNN=1: oneDNN's kernels for every pass that
                         `models.cpu_conv` leaves to XLA (models/onednn_conv.py)
  upsample='repeat' | 'broadcast' | 'resize'    the models' `upsample2` replaced
  maxpool='reduce_window' | 'reshape'           the models' `max_pool2` replaced
  overlapping_pool='reduce_window'              InceptionV3's `max_pool` as flax's `nn.max_pool`
  overlapping_pool='reduce_window_forward'      only its forward as `nn.max_pool`
  avg_pool='reduce_window'                      InceptionV3's `avg_pool3` as flax's `nn.avg_pool`
  dtype='bfloat16'       the model computes in bf16 (parameters stay float32)
  batch_norm='two_pass' | 'one_pass'   flax's nn.BatchNorm for layers.BatchNorm (its
                         use_fast_variance False / True; jaxvision's is one pass, shifted)
  dropout='flax'         flax's `nn.Dropout` (a 32-bit random word a unit) for layers.Dropout
  donate=False           the step without buffer donation (read by jaxvision_side)
  devices=2              the global batch split over 2 CPU devices by pmap (needs the worker's
                         XLA_FLAGS to hold --xla_force_host_platform_device_count=2)

XLA flags are not variants: they go into the worker's environment (throughput.Case.env).
Patching module attributes is what makes these side-by-side measurements of the *real*
models possible without editing them; nothing outside a worker process is ever patched.
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from benchmarks import alternatives

# modules that bound the building blocks at import time (`from layers import upsample2`)
MODEL_MODULES = (
    "jaxvision.models.layers",
    "jaxvision.models.autoencoder",
    "jaxvision.models.classifiers",
    "jaxvision.models.segmentation",
    "jaxvision.models.inception_v3",
)


def _replace(attr: str, fn) -> None:
    import importlib

    for name in MODEL_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, attr):
            setattr(module, attr, fn)


def _flax_batch_norm(one_pass: bool):
    return lambda *a, **k: nn.BatchNorm(*a, **{**k, "use_fast_variance": one_pass})


# keys that change how the benchmark builds or runs its step, not a layer of the model
BENCHMARK_ONLY = ("dtype", "donate", "devices")
# every key and the values it takes (None: any value, read by the worker itself)
CHOICES = {
    "conv": ("xla", "im2col", "onednn", "onednn_matmul_1x1"),
    "upsample": ("repeat", "broadcast", "resize"),
    "maxpool": ("reduce_window", "reshape"),
    "overlapping_pool": ("reduce_window", "reduce_window_forward", "selects"),
    "avg_pool": ("reduce_window",),
    "dtype": None,
    "batch_norm": ("two_pass", "one_pass"),
    "dropout": ("flax",),
    "donate": None,
    "devices": None,
}


def apply(variant: dict) -> dict:
    """Applies `variant` to this process; returns keyword overrides for build_model."""
    unknown = set(variant) - set(CHOICES)
    if unknown:
        raise ValueError(f"Unknown variant keys {sorted(unknown)}: the keys are {sorted(CHOICES)}.")
    for key, value in variant.items():
        if CHOICES[key] is not None and value not in CHOICES[key]:
            raise ValueError(f"Variant {key}={value!r} is not one of {list(CHOICES[key])}.")
    if variant.get("conv") == "xla":
        _replace("conv_general_dilated", lax.conv_general_dilated)
    if variant.get("conv") == "im2col":
        from jaxvision.models import cpu_conv

        cpu_conv.lowering = alternatives.lowering_im2col
    if variant.get("conv") in ("onednn", "onednn_matmul_1x1"):
        from jaxvision.models import onednn_conv

        os.environ[onednn_conv.SWITCH] = "1"  # read when the first convolution is traced
    if variant.get("conv") == "onednn_matmul_1x1":
        from jaxvision.models import cpu_conv

        cpu_conv.onednn_passes = alternatives.onednn_passes_matmul_1x1
    if "upsample" in variant:
        _replace(
            "upsample2",
            {
                "repeat": alternatives.upsample2_repeat,
                "broadcast": alternatives.upsample2_broadcast,
                "resize": alternatives.upsample2_resize,
            }[variant["upsample"]],
        )
    if "maxpool" in variant:
        _replace(
            "max_pool2",
            {"reduce_window": alternatives.max_pool2_reduce_window, "reshape": alternatives.max_pool2_reshape}[
                variant["maxpool"]
            ],
        )
    if variant.get("overlapping_pool") == "reduce_window":
        _replace("max_pool", alternatives.max_pool_reduce_window)
    if variant.get("overlapping_pool") == "reduce_window_forward":
        _replace("max_pool_forward", alternatives.max_pool_reduce_window)
    if variant.get("overlapping_pool") == "selects":
        _replace("max_pool", alternatives.max_pool_selects)
    if variant.get("avg_pool") == "reduce_window":
        _replace("avg_pool3", alternatives.avg_pool3_reduce_window)
    if variant.get("dropout") == "flax":
        _replace("Dropout", nn.Dropout)
    if "batch_norm" in variant:
        _replace("BatchNorm", _flax_batch_norm({"two_pass": False, "one_pass": True}[variant["batch_norm"]]))
    return {"dtype": jnp.dtype(variant["dtype"])} if "dtype" in variant else {}
