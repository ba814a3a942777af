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

import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence

import jax
import ml_collections
import tqdm
from tensorboardX import SummaryWriter


def _host_cpu() -> str:
    """The host's CPU model and its widest vector instructions: XLA:CPU's code, and so float32
    rounding, differ between an AVX2 and an AVX-512 machine."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    widest = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2")) if flag in flags), "")
    return ", ".join(x for x in (model or platform.machine(), widest) if x)


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
