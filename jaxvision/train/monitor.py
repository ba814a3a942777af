"""The monitored metric: which epoch is best, and early stopping with patience (Keras' rules)."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass
class Monitor:
    """Tracks `metric` ('split/name') after each evaluation.

    An epoch improves when its value beats the best by more than `min_delta` (lower for mode
    'min', higher for 'max'); after `patience` epochs in a row without improvement, training
    stops (patience 0: never). A NaN or infinite value never improves. The counters are saved in every
    checkpoint, so a resumed run stops at the same epoch as an uninterrupted one.
    """

    metric: str
    mode: str = "min"
    patience: int = 0
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.metric)

    @property
    def split(self) -> str:
        return self.metric.split("/", 1)[0]

    def update(self, epoch: int, results: dict[str, dict[str, float]]) -> bool:
        """Records one epoch's results (split -> name -> value); True if it is the new best."""
        if not self.enabled:
            return False
        split, name = self.metric.split("/", 1)
        value = results[split][name]
        sign = 1.0 if self.mode == "min" else -1.0
        improved = math.isfinite(value) and (self.best is None or sign * (self.best - value) > self.min_delta)
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def counters(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load(self, counters: dict) -> None:
        self.best, self.best_epoch, self.bad_epochs = counters["best"], counters["best_epoch"], counters["bad_epochs"]
