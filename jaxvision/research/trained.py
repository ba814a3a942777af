"""A trained run's record: the numbers of its reported epoch, its predictions and its figures.

The reported epoch is the one whose state the best checkpoint holds (its monitor counters say
which), or the last one when the run monitors nothing, as paper B reports its overfitted
classifiers. Numbers of the 'test' split come from the final test evaluation. Metrics that need
every prediction of a split at once (mAP), and a classifier's held-out predictions (`heldout`),
are computed here from the same checkpoint.
"""

from __future__ import annotations

import os

import ml_collections
import numpy as np

from jaxvision import metrics
from jaxvision.research import figures, heldout, tables
from jaxvision.research.results import RunResult, Row, Table, columns
from jaxvision.train import scoring
from jaxvision.train.checkpoint import Checkpoints
from jaxvision.train.logs import read_history
from jaxvision.train.tasks import make_task

PREDICTED = ("mAP",)  # metric names computed here from predictions
FIGURE_EXAMPLES = 6  # validation images shown in reconstruction and segmentation figures


def history(workdir: str) -> list[dict]:
    return read_history(os.path.join(workdir, "metrics.jsonl"))


def reported_epoch(config: ml_collections.ConfigDict, workdir: str, records: list[dict]) -> int | None:
    """The epoch whose state the report describes (None before the first epoch ends)."""
    epochs = sorted({int(r["epoch"]) for r in records if r.get("split") == "train"})
    if not epochs:
        return None
    if config.monitor.metric:
        checkpoints = Checkpoints(workdir, read_only=True)
        try:
            meta = checkpoints.meta("best")
        finally:
            checkpoints.close()
        if meta is not None and meta["monitor"]["best_epoch"] is not None:
            return int(meta["monitor"]["best_epoch"])
    return epochs[-1]


def numbers(records: list[dict], epoch: int | None) -> dict[str, float]:
    """'split/metric' -> value at `epoch`; 'test/...' from the final test."""
    out = {}
    for record in records:
        split = record.get("split")
        if split == "test" or (int(record.get("epoch", -1)) == epoch and split != "train_step"):
            out.update(
                {
                    f"{split}/{k}": v
                    for k, v in record.items()
                    if k not in ("step", "epoch", "split") and isinstance(v, (int, float))
                }
            )
    return out


def _train_epochs(records: list[dict]) -> dict[int, float]:
    """epoch -> seconds spent in its training steps (evaluation excluded)."""
    return {int(r["epoch"]): r.get("epoch_seconds", 0.0) for r in records if r.get("split") == "train"}


def predict(
    config: ml_collections.ConfigDict, workdir: str, split: str = "validation", limit: int | None = None
) -> dict[str, np.ndarray]:
    """The reported state's outputs on the first `limit` (default all) examples of `split` of a
    resolved `config`.

    Returns 'image' (the cached features of a `cache_features` run), 'target' (label, mask or
    the image itself) and 'output' (the task's output: probabilities or the reconstruction), as
    host arrays in the split's fixed order; and the dataset's 'class_names'.
    """
    pipelines, engine, state = scoring.restore(config, workdir, "reported", cached_features=True)
    if split not in pipelines.evals:
        raise ValueError(
            f"{workdir}: split {split!r} is not evaluated for this dataset; it has {', '.join(pipelines.evals)}."
        )
    parts: dict[str, list[np.ndarray]] = {"image": [], "target": [], "output": []}
    for examples, output in scoring.outputs(engine, state, pipelines.evals[split](), limit):
        parts["image"].append(examples["image"])
        parts["target"].append(examples[engine.task.target])
        parts["output"].append(output)
    out = {k: np.concatenate(v)[:limit] for k, v in parts.items()}
    return dict(out, class_names=np.asarray(pipelines.info.class_names, dtype=str))


def column_values(config: ml_collections.ConfigDict, workdir: str, found: dict[str, float]) -> dict:
    """The run's value of each column of its results table (None where it has none); a held-out
    accuracy is an Estimate with its interval, where the predictions were kept."""
    found = dict(found)
    kept = heldout.accuracy_splits(config)
    for column in columns(config.report):
        split, name = column.metric.split("/", 1)
        if name in PREDICTED and column.metric not in found:
            out = predict(config, workdir, split)
            found[column.metric] = metrics.mean_average_precision(out["output"], out["target"])
        if name == "accuracy" and split in kept:
            found[column.metric] = heldout.interval(workdir, split) or found.get(column.metric)
    return {column.title: found.get(column.metric) for column in columns(config.report)}


def _shown(path: str) -> str:
    """A data folder as the docs should print it: relative to the repository, not this machine."""
    repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.relpath(os.path.abspath(path), repository)


def describe_data(d: ml_collections.ConfigDict) -> str:
    """The dataset of a (resolved) data config, in a few words."""
    size = f"{d.image_size}x{d.image_size} {'grayscale' if d.grayscale else 'RGB'}"
    if d.name == "shapes":
        s = d.shapes
        return (
            f"embedded 'shapes' ({s.num_train} train / {s.num_validation} validation / {s.num_test} test, "
            f"drawn at {s.image_size} px), {size}"
        )
    if d.name in ("voc_multilabel", "voc_segmentation"):
        what = "/".join(d.voc.classes) if d.name == "voc_multilabel" else "segmentation masks"
        return f"PASCAL VOC {d.voc.year} ({what}), {size}"
    if d.name == "folder":
        return f"folder {_shown(d.folder.root)} (train split '{d.train_split}'), {size}"
    if d.name == "mask_folder":
        return (
            f"images and masks in {_shown(d.masks.root)} (train split '{d.train_split}', fractions "
            f"{tuple(d.masks.split)}, seed {d.masks.split_seed}), {size}"
        )
    return f"{d.name}, {size}"


def settings(config: ml_collections.ConfigDict, records: list[dict]) -> str:
    """One line: the dataset, model, loss, optimizer and schedule a run used, and its time."""
    model = ", ".join(f"{k}={v}" for k, v in config.model.items() if k != "name")
    opt, epochs = config.optimizer, _train_epochs(records)
    return (
        f"{describe_data(config.data)}; {config.model.name}({model}); loss {config.loss}; "
        f"{opt.name} lr {opt.learning_rate:g}"
        f"{f' (backbone x {opt.backbone_lr_scale:g})' if opt.backbone_lr_scale != 1 else ''}"
        f"{f' + L2 {opt.l2:g}' if opt.l2 else ''}; batch {config.batch_size}; {len(epochs)} of "
        f"{config.num_epochs} epochs, {sum(epochs.values()):.0f} s of training"
    )


def _figure(config, workdir: str, figure: str) -> tuple[dict | None, list]:
    """The examples the task's figure shows ('image', 'target', 'outputs' by the run's label;
    None without a figure) and the file it was drawn in."""
    if not figure:
        return None, []
    found = predict(config, workdir, "validation", FIGURE_EXAMPLES)
    shown = {"image": found["image"], "target": found["target"], "outputs": {config.report.label: found["output"]}}
    path = os.path.join(workdir, f"{figure}.png")
    if figure == "reconstruction":
        return shown, [figures.reconstruction_grid(shown["image"], shown["outputs"], path)]
    return shown, [figures.segmentation_overlays(shown["image"], shown["target"], shown["outputs"], path)]


def result(config: ml_collections.ConfigDict, workdir: str) -> RunResult:
    """The record of a finished run of a resolved `config`, with its curves, figure, kept
    predictions and results.md written beside it."""
    workdir, r = os.path.abspath(workdir), config.report
    records = history(workdir)
    epoch = reported_epoch(config, workdir, records)
    found = numbers(records, epoch)
    splits = tuple(dict.fromkeys(rec["split"] for rec in records if rec.get("split") != "test"))  # each epoch's
    written = [figures.plot_curves(records, r.curves, os.path.join(workdir, "curves.png"), r.row, splits)]
    figure = make_task(config.task, config.loss).figure
    shown, drawn = _figure(config, workdir, figure)
    confusions = []
    for split in heldout.accuracy_splits(config):
        out = predict(config, workdir, split)
        heldout.save(workdir, split, out["target"], out["output"], out["class_names"])
        confusions.append(heldout.summary(workdir, split, r.row))
    rows = [Row(r.row, {c.title: c.paper for c in columns(r)}, column_values(config, workdir, found))]
    rows += [Row(name, {column: value}, {}) for name, column, value in r.get("extra_rows", ())]
    table = Table(r.table, columns(r), tuple(rows), (f"- *{r.row}*: {settings(config, records)}.",))
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(tables.table(table))
        f.writelines(
            f"\n{tables.confusions(c)}\n![per-class accuracy]({os.path.basename(c['figure'])})\n" for c in confusions
        )
    record = {
        "kind": "trained",
        "row": r.row,
        "figure": figure,
        "tables": [table],
        "numbers": found,
        "reported_epoch": epoch,
        "epochs_run": len(_train_epochs(records)),
        "train_seconds": sum(_train_epochs(records).values()),
        "confusions": confusions,
    }
    written += drawn + [c["figure"] for c in confusions] + [os.path.join(workdir, "results.md")]
    return RunResult(record, shown, tuple(str(p) for p in written))
