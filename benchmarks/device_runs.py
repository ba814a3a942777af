"""The runs that benchmarks/device_check.py times end to end on a GPU host, read by grain.

A run is (experiment spec, run of a suite or '', --config overrides); device_prepare.py
prepares each one's dataset here, device_check.py reads it there.
"""

from __future__ import annotations

RUNS = {
    # paper B's segmenter on the embedded dataset (64x64 gray, Dice loss)
    "segmenter": ("experiments/quickstart.py", "dice", ()),
    # paper A's network at its 299x299 on the 818 real Oxford-102 photos, from random weights
    # (the ImageNet weights, 90 MB converted, do not fit the 64 MiB that travels)
    "inception_v3": ("experiments/flowers_real.py:flowers102_scratch", "", ("--config.data.image_size=299",)),
}


def load(spec: str, run: str, overrides=()):
    """The resolved config of one run, read by grain."""
    from benchmarks import end_to_end

    return end_to_end.load(spec, [*overrides, "--config.data.reader=grain"], run)
