"""What a run writes for people: progress bars, metrics.jsonl, TensorBoard events, the config.

Only process 0 writes (`enabled=False` elsewhere), so a multi-process run logs once.

  WORKDIR/config.json      the resolved config of the latest start
  WORKDIR/metrics.jsonl    one JSON object per line: step, epoch, split and the metrics
  WORKDIR/tensorboard/     TensorBoard event files with the same scalars as 'split/metric'

After a resume, lines for the steps between the checkpoint and the interruption appear twice
(first from the interrupted run); readers keep the last line for each (step, split).
"""

from __future__ import annotations

import json
import os
import sys

import ml_collections
import tqdm
from tensorboardX import SummaryWriter


class RunLog:
    """Progress bars, metrics.jsonl and TensorBoard events of one run."""

    def __init__(self, workdir: str, enabled: bool):
        self.workdir, self.enabled = workdir, enabled
        self._events = SummaryWriter(os.path.join(workdir, "tensorboard"), flush_secs=10) if enabled else None

    def save_config(self, config: ml_collections.ConfigDict) -> None:
        if self.enabled:
            with open(os.path.join(self.workdir, "config.json"), "w") as f:
                f.write(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")

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
