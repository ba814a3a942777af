"""Metrics on the host: `Ratio` sums added over steps, batches, devices and processes, and
divided once (`summarize`); `evaluate_split` computes a split's exact metrics this way."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxvision.metrics import Ratio
from jaxvision.train.engine import Engine


def add(a: dict[str, Ratio] | None, b: dict[str, Ratio]) -> dict[str, Ratio]:
    return b if a is None else jax.tree.map(np.add, a, b)


def summarize(sums: dict[str, Ratio], class_names) -> dict[str, float]:
    """Divides every total by its count once; a per-label metric becomes 'name/label'."""
    out = {}
    for name, ratio in sums.items():
        count = np.asarray(ratio.count, np.float64)
        value = np.where(count > 0, np.asarray(ratio.total, np.float64) / np.maximum(count, 1e-300), ratio.empty)
        if value.ndim == 0:
            out[name] = float(value)
        else:
            for i, v in enumerate(value):
                out[f"{name}/{class_names[i] if i < len(class_names) else i}"] = float(v)
    return out


def sum_over_processes(sums: dict[str, Ratio]) -> dict[str, Ratio]:
    """Adds the sums of every process (a collective: every process calls it once per split)."""
    if jax.process_count() == 1:
        return sums
    # Gathered arrays are float32 on the devices; a (high, low) pair keeps ~48 bits of each sum.
    high = jax.tree.map(lambda x: np.float32(x), sums)
    low = jax.tree.map(lambda x, h: np.float32(np.asarray(x, np.float64) - h), sums, high)
    gathered = multihost_utils.process_allgather((high, low))
    return jax.tree.map(lambda h, lo: np.asarray(h, np.float64).sum(0) + np.asarray(lo, np.float64).sum(0), *gathered)


def evaluate_split(engine: Engine, state, batches: Callable[[], Iterator[dict]], class_names) -> dict[str, float]:
    """Exact metrics of one split: sums over every device, batch and process, divided once."""
    sums = None
    for batch in batches():
        per_device = jax.device_get(engine.eval_step(state, batch))
        sums = add(sums, jax.tree.map(lambda x: np.asarray(x, np.float64).sum(0), per_device))
    if sums is None:
        raise ValueError("An evaluation split gave no batches: check config.data's split sizes.")
    return summarize(sum_over_processes(sums), class_names)
