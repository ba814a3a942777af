"""The runs a suite holds, one adapter per kind behind one interface:

    kind = of(run_config)
    kind.run(run_config, workdir)       -> None, or the one line a signal stopped it with
    kind.result(run_config, workdir)    -> RunResult (its record is written as results.json)

  trained   `train.fit` (the default kind; its record: jaxvision/research/trained.py)
  pca       PCA fitted on the training images of its `data` (`kind='pca'`, jaxvision/pca.py)
  prior     the baselines of a task, fitted on the training split (`kind='prior'`, jaxvision/baselines.py)

A run with `optional=True` whose pretrained weights cannot be had is left out: its record says
'not run', and its rows and claims say so.
"""

from __future__ import annotations

import json
import os
from typing import Protocol

import ml_collections
import numpy as np
import tqdm

from jaxvision import baselines, data, pca, train
from jaxvision.data.batches import real_examples
from jaxvision.research import results, trained
from jaxvision.research.results import Row, RunResult, Table, columns
from jaxvision.train.tasks import make_task
from jaxvision.weights import pretrained, warmstart


class Kind(Protocol):
    def run(self, config: ml_collections.ConfigDict, workdir: str) -> str | None: ...

    def result(self, config: ml_collections.ConfigDict, workdir: str) -> RunResult: ...


def _say(message: str) -> None:
    tqdm.tqdm.write(message)


def _written(workdir: str, found: RunResult) -> RunResult:
    results.write(workdir, found.record)
    return found


def _record(kind: str, config, rows, notes, numbers=None, figure: str = "") -> dict:
    table = Table(config.report.table, columns(config.report), tuple(rows), tuple(notes))
    return {
        "kind": kind,
        "row": config.report.row,
        "figure": figure,
        "tables": [table],
        "numbers": numbers or {},
        "confusions": [],
    }


class Trained:
    def run(self, config, workdir: str) -> str | None:
        config = warmstart.bind(config, workdir)  # again: a run it starts from may have just finished
        try:
            message = warmstart.prepare(config, workdir)
        except pretrained.PretrainedError as error:
            if not config.get("optional"):
                raise
            _say(f"Run {os.path.basename(workdir)} left out: {error}")  # its rows and claims say 'not measured'
            return None
        if message:
            _say(message)
        fitted = train.fit(config, workdir)
        return fitted.message if fitted.status == "interrupted" else None

    def result(self, config, workdir: str) -> RunResult:
        if not os.path.isfile(os.path.join(workdir, "metrics.jsonl")):  # an optional run that could not start
            os.makedirs(workdir, exist_ok=True)
            row = Row(config.report.row, {c.title: c.paper for c in columns(config.report)}, {})
            note = f"- *{config.report.row}*: not run (see the suite's log: its weights could not be had)."
            return _written(workdir, RunResult(_record("not run", config, [row], [note])))
        return _written(workdir, trained.result(config, workdir))


def _images(batches) -> np.ndarray:
    return np.concatenate([real_examples(batch)["image"] for batch in batches])


class PCA:
    def run(self, config, workdir: str) -> None:
        """Fits PCA with `config.components` on the training images of `config.data`; keeps the
        validation errors (pca.json) and a few reconstructions."""
        os.makedirs(workdir, exist_ok=True)
        pipelines = data.make_pipelines(config)
        train_images = _images(pipelines.train(0))
        validation = _images(pipelines.evals["validation"]())
        fitted = pca.fit(train_images, max(config.components))
        found, shown = {}, {"image": validation[: trained.FIGURE_EXAMPLES]}
        for k in tqdm.tqdm(config.components, desc="PCA", unit="k", leave=False):
            used = min(k, fitted.max_k)
            errors = fitted.reconstruction_errors(validation, used)
            found[str(k)] = {
                "components": used,
                "train_images": len(train_images),
                "validation/mean_squared_error": float(np.mean(errors["mse"])),
                "validation/mean_absolute_error": float(np.mean(errors["mae"])),
            }
            reconstructed = fitted.reconstruct(validation[: trained.FIGURE_EXAMPLES], used)
            shown[str(k)] = np.clip(np.asarray(reconstructed), 0.0, 1.0)
        np.savez(os.path.join(workdir, "reconstructions.npz"), **shown)
        with open(os.path.join(workdir, "pca.json"), "w") as f:
            json.dump(found, f, indent=2)

    def result(self, config, workdir: str) -> RunResult:
        with open(os.path.join(workdir, "pca.json")) as f:
            found = json.load(f)
        rows = []
        for k in config.components:
            one = found[str(k)]
            name = f"PCA, {k} components" + (f" (only {one['components']} exist)" if one["components"] < k else "")
            rows.append(Row(name, {}, {c.title: one.get(c.metric) for c in columns(config.report)}))
        note = (
            f"- *PCA*: fitted on the {found[str(config.components[0])]['train_images']} training images of "
            f"{trained.describe_data(config.data)}."
        )
        with np.load(os.path.join(workdir, "reconstructions.npz")) as f:
            drawn = {k: f[k] for k in f.files}
        shown = {"image": drawn["image"], "outputs": {f"PCA, {k}": drawn[str(k)] for k in config.components}}
        return _written(workdir, RunResult(_record("pca", config, rows, [note], figure="reconstruction"), shown))


def _targets(batches, key: str) -> np.ndarray:
    return np.concatenate([real_examples({k: batch[k] for k in (key, "valid")})[key] for batch in batches()])


class Prior:
    def run(self, config, workdir: str) -> None:
        """Fits the baselines of `config.task` on the training split and scores them on `config.split`."""
        if config.task not in baselines.FITS:
            raise ValueError(f"A baseline run has task {config.task!r}: use one of {', '.join(baselines.FITS)}.")
        split, key = config.split, make_task(config.task, config.loss).target
        config = config.copy_and_resolve_references()
        config.data.eval_splits = (config.data.train_split, split)
        pipelines = data.make_pipelines(config)
        training, held_out = (_targets(pipelines.evals[s], key) for s in (config.data.train_split, split))
        found = {**baselines.FITS[config.task](training, held_out), "split": split, "held_out_images": len(held_out)}
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "baselines.json"), "w") as f:
            json.dump(found, f, indent=2)

    def result(self, config, workdir: str) -> RunResult:
        with open(os.path.join(workdir, "baselines.json")) as f:
            found = json.load(f)
        names = baselines.NAMES[config.task]
        numbers = {f"{b}/{found['split']}/{k}": v for b in names for k, v in found[b].items()}
        rows = [
            Row(f"baseline: {names[b]}", {}, {c.title: numbers.get(f"{b}/{c.metric}") for c in columns(config.report)})
            for b in names
        ]
        note = f"- *baselines*: scored on the same {found['held_out_images']} held-out images; {found['fitted']}."
        return _written(workdir, RunResult(_record("prior", config, rows, [note], numbers)))


KINDS: dict[str, Kind] = {"trained": Trained(), "pca": PCA(), "prior": Prior()}
UNTRAINED = ("pca", "prior")  # kinds that train nothing


def of(config: ml_collections.ConfigDict) -> Kind:
    kind = config.get("kind") or "trained"
    if kind not in KINDS:
        raise ValueError(f"A run of kind {kind!r}: use one of {', '.join(KINDS)}.")
    return KINDS[kind]
