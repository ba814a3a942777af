"""What a run writes for people: progress bars, metrics.jsonl, TensorBoard events, the config.

Only process 0 writes (`enabled=False` elsewhere), so a multi-process run logs once.

  WORKDIR/config.json      the resolved config of the latest start
  WORKDIR/environment.json the software and devices of the latest start (versions, XLA_FLAGS)
  WORKDIR/metrics.jsonl    one JSON object per line: step, epoch, split and the metrics
  WORKDIR/tensorboard/     TensorBoard event files with the same scalars as 'split/metric'

After a resume, lines for the steps between the checkpoint and the interruption appear twice
(first from the interrupted run); readers keep the last line for each (step, split).
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import pathlib
import platform
import sys
from collections.abc import Mapping, Sequence

import jax
import ml_collections
import tqdm
from tensorboardX import SummaryWriter

from jaxvision.models import onednn_conv


def _host_cpu() -> str:
    """The host's CPU as XLA:CPU's float32 rounding depends on it: the model (family, model and
    stepping tell two hosts with the same name apart), the widest vector instructions, the caches
    (Eigen sizes its matmul blocks, and so its order of sums, by them) and the cores in use."""
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n")[0]  # the first processor's block
    except OSError:
        return platform.processor() or platform.machine()
    field = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}
    flags = set(field.get("flags", "").split())
    widest = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2")) if flag in flags), "")
    if widest == "AVX-512" and "avx512_bf16" in flags:
        widest += " with BF16"
    ids = ", ".join(f"{k} {field[k]}" for k in ("cpu family", "model", "stepping") if k in field)
    caches = []
    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            level, kind, size = (pathlib.Path(index, name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        if kind != "Instruction" and level in ("2", "3"):
            caches.append(f"L{level} {size}")
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    cores = f"{count} core{'s' if count > 1 else ''}" if count else ""
    model = field.get("model name") or platform.machine()
    return ", ".join(x for x in (f"{model} ({ids})" if ids else model, widest, *caches, cores) if x)


class RunLog:
    """Progress bars, metrics.jsonl and TensorBoard events of one run."""

    def __init__(self, workdir: str, enabled: bool):
        self.workdir, self.enabled = workdir, enabled
        self._events = SummaryWriter(os.path.join(workdir, "tensorboard"), flush_secs=10) if enabled else None

    def save_config(self, config: ml_collections.ConfigDict) -> None:
        if self.enabled:
            with open(os.path.join(self.workdir, "config.json"), "w") as f:
                f.write(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")

    def save_environment(self) -> None:
        """What else decides a run's float32 rounding: the libraries, the devices, XLA's flags."""
        if not self.enabled:
            return
        devices = jax.devices()
        record = {
            **{name: importlib.metadata.version(name) for name in ("jax", "jaxlib", "flax", "optax")},
            "backend": jax.default_backend(),
            "device_kind": devices[0].device_kind,
            "devices": len(devices),
            "processes": jax.process_count(),
            "host_cpu": _host_cpu(),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
            "onednn_convolutions": jax.default_backend() == "cpu" and onednn_conv.enabled(),
        }
        with open(os.path.join(self.workdir, "environment.json"), "w") as f:
            json.dump(record, f, indent=2)
            f.write("\n")

    def write(self, step: int, epoch: int, split: str, metrics: dict[str, float]) -> None:
        """Appends one line to metrics.jsonl and the same scalars to TensorBoard."""
        if not self.enabled:
            return
        record = {"step": step, "epoch": epoch, "split": split, **metrics}
        with open(os.path.join(self.workdir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
        for name, value in metrics.items():
            self._events.add_scalar(f"{split}/{name}", value, step)

    def say(self, message: str) -> None:
        if self.enabled:
            tqdm.tqdm.write(message)

    def warn(self, message: str) -> None:
        """On stderr, on a line of its own: tqdm lifts the progress bar out of the way first."""
        if self.enabled:
            tqdm.tqdm.write(message, file=sys.stderr)

    def progress(self, epoch: int, num_epochs: int, steps: int, done: int, batch_size: int) -> tqdm.tqdm:
        """A bar over one epoch counted in images, so tqdm shows images/second and the ETA."""
        return tqdm.tqdm(
            total=steps * batch_size,
            initial=done * batch_size,
            unit="img",
            unit_scale=True,
            desc=f"epoch {epoch + 1}/{num_epochs}",
            disable=not self.enabled,
            leave=False,
            dynamic_ncols=True,
        )

    def close(self) -> None:
        if self._events is not None:
            self._events.close()


def read_history(path: str) -> list[dict]:
    """The records of a `metrics.jsonl` file, in order (a missing file is an empty history)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def epoch_series(history: Sequence[Mapping], split: str, key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one metric of one split from history records.

    Records carry 'epoch', 'split' and metric values; only the last record of each epoch counts.
    """
    by_epoch: dict[int, float] = {}
    for record in history:
        if record.get("split") == split and key in record:
            by_epoch[int(record["epoch"])] = float(record[key])
    epochs = sorted(by_epoch)
    return epochs, [by_epoch[e] for e in epochs]
