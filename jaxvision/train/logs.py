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
import socket
import time

import ml_collections
import tqdm


class _EventFile:
    """A TensorBoard event file of scalar summaries.

    Written with TensorFlow's own record writer and Event protos, because the `tensorboard`
    package (which `tf.summary.scalar` needs) is not a dependency of jaxvision.
    """

    def __init__(self, directory: str):
        import tensorflow as tf  # imported only by the process that logs

        self._tf = tf
        os.makedirs(directory, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self._writer = tf.io.TFRecordWriter(os.path.join(directory, name))
        self._writer.write(tf.compat.v1.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())

    def scalars(self, step: int, values: dict[str, float]) -> None:
        summary = self._tf.compat.v1.Summary(
            value=[self._tf.compat.v1.Summary.Value(tag=tag, simple_value=v) for tag, v in values.items()]
        )
        event = self._tf.compat.v1.Event(wall_time=time.time(), step=step, summary=summary)
        self._writer.write(event.SerializeToString())
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class RunLog:
    """Progress bars, metrics.jsonl and TensorBoard events of one run."""

    def __init__(self, workdir: str, enabled: bool):
        self.workdir, self.enabled = workdir, enabled
        self._events = _EventFile(os.path.join(workdir, "tensorboard")) if enabled else None

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
        self._events.scalars(step, {f"{split}/{name}": value for name, value in metrics.items()})

    def say(self, message: str) -> None:
        if self.enabled:
            tqdm.tqdm.write(message)

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
