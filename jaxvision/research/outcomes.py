"""What a finished run gives its report: the numbers of the reported epoch, and predictions.

The reported epoch is the best one by `config.monitor` (the state the best checkpoint holds), or
the last one when the run monitors nothing, as paper B reports its overfitted classifiers.
Numbers of the 'test' split come from the final test evaluation. Metrics that need every
prediction of a split at once (mAP), and a classifier's held-out predictions (`heldout`), are
computed here from the same checkpoint.
"""

from __future__ import annotations

import os

import ml_collections
import numpy as np

from jaxvision import metrics
from jaxvision.research import heldout, report
from jaxvision.train.config import resolve
from jaxvision.train import scoring
from jaxvision.train.monitor import Monitor

PREDICTED = ("mAP",)  # metric names computed here from predictions


def history(workdir: str) -> list[dict]:
    return report.read_history(os.path.join(workdir, "metrics.jsonl"))


def reported_epoch(config: ml_collections.ConfigDict, records: list[dict]) -> int | None:
    """The epoch whose state the report describes (None before the first epoch ends)."""
    epochs = sorted({int(r["epoch"]) for r in records if r.get("split") == "train"})
    if not epochs:
        return None
    if not config.monitor.metric:
        return epochs[-1]
    split, name = config.monitor.metric.split("/", 1)
    monitor = Monitor(config.monitor.metric, config.monitor.mode, 0, config.early_stopping.min_delta)
    values = dict(zip(*report.epoch_series(records, split, name)))
    for epoch in epochs:
        if epoch in values:
            monitor.update(epoch, {split: {name: values[epoch]}})
    return epochs[-1] if monitor.best_epoch is None else monitor.best_epoch


def numbers(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
    """'split/metric' -> value at the reported epoch; 'test/...' from the final test."""
    records = history(workdir)
    epoch = reported_epoch(config, records)
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


def epochs_run(workdir: str) -> int:
    return len({int(r["epoch"]) for r in history(workdir) if r.get("split") == "train"})


def train_seconds(workdir: str) -> float:
    """Seconds spent in training steps (the epochs' `epoch_seconds`, evaluation excluded)."""
    by_epoch = {int(r["epoch"]): r.get("epoch_seconds", 0.0) for r in history(workdir) if r.get("split") == "train"}
    return float(sum(by_epoch.values()))


def predict(
    config: ml_collections.ConfigDict, workdir: str, split: str = "validation", limit: int | None = None
) -> dict[str, np.ndarray]:
    """The reported state's outputs on the first `limit` (default all) examples of `split`.

    Returns 'image' (the cached features of a `cache_features` run), 'target' (label, mask or
    the image itself) and 'output': probabilities
    (sigmoid for multi-label and segmentation, softmax for classification) or the
    reconstruction, as host arrays in the split's fixed order; and the dataset's 'class_names'.
    """
    config = resolve(config)
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


def column_values(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float | None]:
    """The run's value of each column of its results table (None where it has none)."""
    found = numbers(config, workdir)
    predicted = {}
    for _, source, _ in config.report.columns:
        split, name = source.split("/", 1)
        if name in PREDICTED and source not in predicted:
            out = predict(config, workdir, split)
            predicted[source] = metrics.mean_average_precision(out["output"], out["target"])
    found.update(predicted)
    values = {column: found.get(source) for column, source, _ in config.report.columns}
    for column, source, _ in config.report.columns:
        split = source.split("/", 1)[0]
        if source.endswith("/accuracy") and split in heldout.accuracy_splits(config):
            values[column] = heldout.interval(workdir, split) or values[column]
    return values


def _shown(path: str) -> str:
    """A data folder as the docs should print it: relative to the repository, not this machine."""
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def settings(config: ml_collections.ConfigDict, workdir: str) -> str:
    """One line: the dataset, model, loss, optimizer and schedule a run used, and its time."""
    config = resolve(config)
    model = ", ".join(f"{k}={v}" for k, v in config.model.items() if k != "name")
    opt = config.optimizer
    return (
        f"{describe_data(config.data)}; {config.model.name}({model}); loss {config.loss}; "
        f"{opt.name} lr {opt.learning_rate:g}"
        f"{f' (backbone x {opt.backbone_lr_scale:g})' if opt.backbone_lr_scale != 1 else ''}"
        f"{f' + L2 {opt.l2:g}' if opt.l2 else ''}; batch {config.batch_size}; {epochs_run(workdir)} of "
        f"{config.num_epochs} epochs, {train_seconds(workdir):.0f} s of training"
    )


# --- a run's own report -----------------------------------------------------------------------

FIGURE_EXAMPLES = 6  # validation images shown in reconstruction and segmentation figures


def table(title: str, columns, rows: list[report.Row], notes: list[str]) -> str:
    return report.results_table(title, [c[0] for c in columns], rows, "\n".join(notes))


def _rows(config, workdir: str) -> tuple[list[report.Row], list[str]]:
    """The run's table rows (its own, then any cited ones) and its settings note."""
    rows = [report.Row(config.report.row, {c: p for c, _, p in config.report.columns}, column_values(config, workdir))]
    rows += [report.Row(name, {column: value}, {}) for name, column, value in config.report.get("extra_rows", ())]
    return rows, [f"- *{config.report.row}*: {settings(config, workdir)}."]


def run_report(config: ml_collections.ConfigDict, workdir: str) -> tuple[list[str], list, list[str], dict | None]:
    """Writes a finished run's curves.png, figure and results.md (as `config.report` describes
    them); returns (files written, table rows, notes, the figure's examples or None)."""
    workdir = os.path.abspath(workdir)
    r = config.report
    written = [report.plot_curves(history(workdir), r.curves, os.path.join(workdir, "curves.png"), r.row)]
    shown = (
        predict(config, workdir, "validation", FIGURE_EXAMPLES)
        if r.figure in ("reconstruction", "segmentation")
        else None
    )
    if shown is not None and r.figure == "reconstruction":
        written.append(
            report.reconstruction_grid(
                shown["image"], {r.label: shown["output"]}, os.path.join(workdir, "reconstruction.png")
            )
        )
    elif shown is not None:
        written.append(
            report.segmentation_overlays(
                shown["image"], shown["target"], {r.label: shown["output"]}, os.path.join(workdir, "segmentation.png")
            )
        )
    confusions = []
    for split in heldout.accuracy_splits(config):
        out = predict(config, workdir, split)
        heldout.save(workdir, split, out["target"], out["output"], out["class_names"])
        confusions.append(heldout.summary(workdir, split, r.row))
    rows, notes = _rows(config, workdir)
    path = os.path.join(workdir, "results.md")
    with open(path, "w") as f:
        f.write(table(r.table, r.columns, rows, notes))
        f.writelines(f"\n{text}\n![per-class accuracy]({os.path.basename(figure)})\n" for text, figure in confusions)
    written += [figure for _, figure in confusions]
    return [str(p) for p in written] + [path], rows, notes, shown
