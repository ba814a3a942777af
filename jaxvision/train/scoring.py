"""Scoring a trained checkpoint: `evaluate` (exact metrics of a split) and `predict` (a CSV).

Both read the 'best' or 'latest' checkpoint of a workdir and never change it; `restore` and
`outputs` are the two steps every reader of a trained model shares (the reports too). The split may be
any split of the configured dataset, including one the run never evaluated, or 'all' (every
split): with `--config.data.folder.root=OTHER --split all` a classifier scores every image of
another folder of the same layout. A dataset whose classes are not the checkpoint's is refused
with one sentence.
"""

from __future__ import annotations

import csv
import json
import os
import sys

import jax
import ml_collections
import numpy as np

from jaxvision.data.batches import real_examples
from jaxvision.train.checkpoint import check_class_names
from jaxvision.train import features
from jaxvision.train.config import resolve
from jaxvision.train.steps import replicate
from jaxvision.train.sums import evaluate_split
from jaxvision.train.tasks import make_task
from jaxvision.train.run import open_run

TOP_K = 5


def restore(
    config: ml_collections.ConfigDict,
    workdir: str,
    which: str = "best",
    splits: tuple[str, ...] | None = None,
    cached_features: bool = False,
):
    """(pipelines, engine, state) of the `which` checkpoint in `workdir`: 'best', 'latest', or
    'reported' (the best when the run monitors a metric, else the latest). `splits` limits what
    the pipelines read; `cached_features` makes a `cache_features` run's pipelines read its own
    cached features (its backbone is frozen), so the head alone runs, in seconds."""
    if which not in ("best", "latest", "reported"):
        raise ValueError(f"The checkpoint to score is {which!r}: use 'best' or 'latest'.")
    with open_run(config, workdir, read_only=True, splits=splits) as run:
        if which == "reported":
            monitored = run.config.monitor.metric and run.checkpoints.step("best") is not None
            which = "best" if monitored else "latest"
        meta = run.checkpoints.meta(which)
        if meta is None:
            other = "latest" if which == "best" else "best"
            hint = (
                f"score the {other} one instead (--checkpoint {other})"
                if run.checkpoints.step(other) is not None
                else "train there first (--mode train)"
            )
            raise FileNotFoundError(f"{run.workdir} has no {which} checkpoint: {hint}.")
        check_class_names(meta, run.pipelines.info.class_names, run.workdir, "score it")
        state, _ = run.checkpoints.restore(run.engine.initial_state, which)
    if cached_features and run.config.cache_features:
        from jaxvision import data  # TensorFlow (tf.data) loads only when a run reads data

        return features.cached(run.config, run.engine, state, data.make_pipelines, lambda _: None), run.engine, state
    return run.pipelines, run.engine, state


def outputs(engine, state, batches, limit: int | None = None):
    """Yields (examples, outputs) per batch of `batches`: the real examples (padding dropped) and
    the task's output of `state`'s model on them (probabilities or reconstructions), as host
    arrays; stops once `limit` examples were yielded."""
    forward = jax.jit(lambda variables, x: engine.task.output(engine.model.apply(variables, x, train=False)))
    variables, kept = state.variables(), 0
    for batch in batches:
        examples = real_examples(batch)
        yield examples, np.asarray(forward(variables, examples["image"]))
        kept += len(examples["image"])
        if limit is not None and kept >= limit:
            return


def evaluate(
    config: ml_collections.ConfigDict, workdir: str, split: str = "test", which: str = "best", say=print
) -> dict[str, float]:
    """Metrics of the `which` ('best' or 'latest') checkpoint in `workdir` on `split`.

    Says them (one line), then writes WORKDIR/evaluation-SPLIT-WHICH.json (process 0); a
    workdir that cannot be written loses the file, not the numbers.
    """
    pipelines, engine, state = restore(config, workdir, which, splits=(split,))
    results = evaluate_split(engine, replicate(state), pipelines.evals[split], pipelines.info.class_names)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in results.items() if "/" not in k)
    say(f"{split} ({which} checkpoint, step {int(state.step)}, {pipelines.info.num_examples[split]} examples): {shown}")
    if jax.process_index() == 0:
        path = os.path.join(os.path.abspath(workdir), f"evaluation-{split}-{which}.json")
        record = {
            "step": int(state.step),
            "split": split,
            "checkpoint": which,
            "examples": pipelines.info.num_examples[split],
            **results,
        }
        try:
            with open(path, "w") as f:
                f.write(json.dumps(record, indent=2) + "\n")
        except OSError as e:
            print(
                f"warning: the metrics above were not saved: {path} cannot be written ({e.strerror}).", file=sys.stderr
            )
    return results


def predict(config: ml_collections.ConfigDict, workdir: str, split: str = "test", which: str = "best") -> str:
    """Writes WORKDIR/predictions-SPLIT-WHICH.csv: each example's file, its labels and the top
    classes with their probabilities (softmax, or sigmoid for multi-label); returns its path."""
    config = resolve(config)
    if jax.process_count() > 1:
        raise ValueError("--mode predict runs in one process: start it without JAX_NUM_PROCESSES or SLURM's tasks.")
    if make_task(config.task, config.loss).target != "label":
        raise ValueError(
            f"--mode predict lists class probabilities, which a {config.task} run has none of: use "
            "--mode report for its figures, or --mode evaluate for its metrics."
        )
    pipelines, engine, state = restore(config, workdir, which, splits=(split,))
    names = pipelines.info.class_names
    k = min(TOP_K, len(names))
    header = ["file", "labels"] + [c for i in range(1, k + 1) for c in (f"top{i}", f"top{i}_probability")]
    rows = []
    for examples, probabilities in outputs(engine, state, pipelines.evals[split](with_names=True)):
        for name, label, p in zip(examples["name"], examples["label"], probabilities):
            top = np.argsort(-p, kind="stable")[:k]
            labels = " ".join(names[i] for i in np.flatnonzero(label > 0.5))
            rows.append([name.decode("utf-8", "replace"), labels] + [v for i in top for v in (names[i], f"{p[i]:.6f}")])
    path = os.path.join(os.path.abspath(workdir), f"predictions-{split}-{which}.csv")
    if jax.process_index() == 0:
        try:
            with open(path, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(header)
                writer.writerows(rows)
        except OSError as e:
            raise RuntimeError(
                f"{path} cannot be written ({e.strerror}): point --workdir at a writable copy of the run."
            ) from None
    return path
