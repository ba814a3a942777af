"""Several runs one after the other, each in its own sub-workdir, and reports people can read.

A suite config (experiments/quickstart.py, the `table*` variants of paper B's files) holds

    config.suite.title   the report's title
    config.suite.order   run names, in the order they run (a later run may start from an
                         earlier one: `config.init.workdir` may name a run of the suite)
    config.suite.notes   lines printed at the top of report.md (scale, caveats)
    config.suite.claims  the paper's claims, checked on the runs' numbers (jaxvision/research/claims.py)
    config.suite.confusions  runs whose ten most confused class pairs and per-class accuracy
                         figure the report shows (classification runs; see jaxvision/research/heldout.py)
    config.suite.scaling optional: a held-out accuracy against a run setting (e.g. training
                         photos per class): title, xlabel, split, curves ((label, ((run, x),
                         ...)), ...), marks ((label, run, x), ...) and paper ((label,
                         correct, photos), ...); drawn as figures/scaling.png with intervals
    config.seed          every run's seed (default 0), replacing their own
    config.runs.NAME     an experiment config (run by `train.fit`), a PCA baseline
                         (`kind='pca'`: fitted on the training images of its `data`) or the
                         baselines of a task (`kind='prior'`, jaxvision/baselines.py); a run
                         with `optional=True` whose pretrained weights cannot be had is left
                         out (its rows and claims say so) instead of stopping the suite

Every run config carries `config.report`: its results `table` (title), `columns` ((name,
'split/metric', paper's value), ...), its `row` name, the metric keys of its `curves`, its
`figure` ('reconstruction', 'segmentation' or '') with the short `label` naming the run there,
and optionally `extra_rows` of numbers the paper cites without a run. Each run's workdir gets
curves.png, its figure and results.md; the suite's workdir gets results.md (one table per paper
table, paper beside ours, with the dataset and settings of every row), figures/ and report.md
linking all of it, and claims.md with each claim ✔ or ✘ (also printed at the end). A suite
started again in the same workdir resumes: finished runs are only re-evaluated.
"""

from __future__ import annotations

import os
import time

import ml_collections
import numpy as np
import tqdm

from jaxvision import baselines, pca, stats, train
from jaxvision.weights import pretrained, warmstart
from jaxvision.research import claims, environment, heldout, outcomes, report, wall_clock
from jaxvision.research.report import Row

KINDS = ("pca", "prior")  # runs that train nothing: PCA (pca.py) and segmentation baselines (baselines.py)


def is_suite(config: ml_collections.ConfigDict) -> bool:
    return "suite" in config


def _say(message: str) -> None:
    tqdm.tqdm.write(message)


# --- the suite --------------------------------------------------------------------------------


def _resolved_runs(config, workdir: str) -> dict[str, ml_collections.ConfigDict]:
    """The suite's runs by name, with `init.workdir` naming a run of the suite made a path."""
    runs = {}
    for name in config.suite.order:
        if name not in config.runs:
            raise ValueError(f"config.suite.order names {name!r}, but config.runs has only {', '.join(config.runs)}.")
        run = train.resolve(config.runs[name])
        if "seed" in config:  # the suite's seed is every run's (e.g. --config.seed=1 on the quickstart)
            run.seed = config.seed
        if run.get("init") is not None and run.init.get("workdir") in config.runs:
            run.init.workdir = os.path.join(workdir, run.init.workdir)
        runs[name] = run if run.get("kind") in KINDS else warmstart.bind(run, os.path.join(workdir, name))
    return runs


def run(config: ml_collections.ConfigDict, workdir: str) -> tuple[str, bool]:
    """Runs every run of the suite in order, then writes the report; returns one line for people
    and whether a signal stopped it (to be resumed)."""
    workdir = os.path.abspath(workdir)
    runs = _resolved_runs(config, workdir)
    started = time.time()
    for i, (name, run_config) in enumerate(runs.items(), start=1):
        sub = os.path.join(workdir, name)
        _say(f"[{i}/{len(runs)}] {name}: {run_config.report.row}  ({sub})")
        if run_config.get("kind") == "pca":
            pca.run(run_config, sub)
            continue
        if run_config.get("kind") == "prior":
            baselines.run(run_config, sub)
            continue
        run_config = warmstart.bind(run_config, sub)  # again: a run it starts from may have just finished
        try:
            message = warmstart.prepare(run_config, sub)
        except pretrained.PretrainedError as error:
            if not run_config.get("optional"):
                raise
            _say(f"Run {name} left out: {error}")  # its rows and claims say 'not measured'
            continue
        if message:
            _say(message)
        result = train.fit(run_config, sub)
        if result.status == "interrupted":  # SIGTERM / Ctrl-C stops the suite, not just this run
            wall_clock.add(workdir, time.time() - started)
            return f"{result.message} The suite stopped during run {name}; it resumes from there.", True
    wall_clock.add(workdir, time.time() - started)
    path = write_report(config, workdir)
    checked = os.path.join(workdir, "claims.md")
    shown = open(checked).read() if os.path.isfile(checked) else ""
    return f"{shown}{len(runs)} runs finished in {(time.time() - started) / 60:.1f} min; the report is {path}.", False


def write_report(config: ml_collections.ConfigDict, workdir: str) -> str:
    """results.md, figures/ and report.md of a suite whose runs are in `workdir`; returns report.md's path."""
    workdir = os.path.abspath(workdir)
    runs = _resolved_runs(config, workdir)
    clock = wall_clock.recorded(workdir)
    tables: dict[str, dict] = {}
    reconstructions: dict[str, np.ndarray] = {}
    segmentations: dict[str, np.ndarray] = {}
    shown: dict[str, np.ndarray] = {}
    run_files: dict[str, list[str]] = {}
    for name, run_config in runs.items():
        sub = os.path.join(workdir, name)
        table = tables.setdefault(
            run_config.report.table, {"columns": run_config.report.columns, "rows": [], "notes": []}
        )
        if run_config.get("kind") == "pca":
            rows, notes = pca.rows(run_config, sub)
            pca_shown = pca.reconstructions(sub)
            shown.setdefault("reconstruction", pca_shown["image"])
            reconstructions.update({f"PCA, {k}": pca_shown[str(k)] for k in run_config.components})
        elif run_config.get("kind") == "prior":
            rows, notes = baselines.rows(run_config, sub)
        elif not os.path.isfile(os.path.join(sub, "metrics.jsonl")):  # an optional run that could not start
            rows = [Row(run_config.report.row, {c: p for c, _, p in run_config.report.columns}, {})]
            notes = [f"- *{run_config.report.row}*: not run (see the suite's log: its weights could not be had)."]
        else:
            run_files[name], rows, notes, out = outcomes.run_report(run_config, sub)
            figure = run_config.report.figure
            if out is not None:
                shown.setdefault(figure, out["image"])
                if figure == "segmentation":
                    shown.setdefault("target", out["target"])
                figures_of = reconstructions if figure == "reconstruction" else segmentations
                figures_of[run_config.report.label] = out["output"]
        table["rows"] += rows
        table["notes"] += notes
    results = "\n".join(outcomes.table(title, t["columns"], t["rows"], t["notes"]) for title, t in tables.items())
    figures = _figures(workdir, shown, reconstructions, segmentations)
    for text, figure in _held_out_sections(config, runs, workdir):
        results += "\n" + text
        figures.append(figure)
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(results)
    checked = claims.table(
        config.suite.get("claims", ()),
        lambda run: _run_numbers(runs[run], workdir, run),
        lambda run, split: heldout.correct(os.path.join(workdir, run), split),
    )
    if checked:
        with open(os.path.join(workdir, "claims.md"), "w") as f:
            f.write(checked)
    path = os.path.join(workdir, "report.md")
    with open(path, "w") as f:
        f.write(_report_markdown(config, runs, results, figures, run_files, workdir, clock, checked))
    return path


def _held_out_sections(config, runs: dict, workdir: str) -> list[tuple[str, tuple[str, str]]]:
    """(markdown, (caption, figure)) of what the suite shows from kept predictions: the mistakes
    of the runs named in `config.suite.confusions`, and the scaling curve."""
    sections = []
    for name in config.suite.get("confusions", ()):
        for split in heldout.accuracy_splits(runs[name]):
            found = heldout.summary(os.path.join(workdir, name), split, runs[name].report.row)
            if found is not None:
                caption = f"Per-class held-out accuracy of {runs[name].report.row} ({split})"
                sections.append((found[0], (caption, found[1])))
    if config.suite.get("scaling"):
        sections.append(_scaling(config.suite.scaling, workdir))
    return sections


def _figures(workdir: str, shown: dict, reconstructions: dict, segmentations: dict) -> list[tuple[str, str]]:
    """(caption, path) of the suite's comparison figures, drawn into workdir/figures."""
    figures = []
    if reconstructions:
        figures.append(
            (
                "Originals (top row) and their reconstructions by each autoencoder and by PCA "
                "(validation images; paper B, Fig. 3)",
                report.reconstruction_grid(
                    shown["reconstruction"], reconstructions, os.path.join(workdir, "figures", "reconstructions.png")
                ),
            )
        )
    if segmentations:
        figures.append(
            (
                "Image, target mask (red) and each model's prediction (blue), validation images (paper B, Fig. 8)",
                report.segmentation_overlays(
                    shown["segmentation"],
                    shown["target"],
                    segmentations,
                    os.path.join(workdir, "figures", "segmentation.png"),
                ),
            )
        )
    return figures


def _scaling(scaling, workdir: str) -> tuple[str, tuple[str, str]]:
    """The scaling table (markdown) and (caption, path) of its figure, from the runs' predictions."""
    header = f"| run | {scaling.xlabel} | held-out top-1 (95 % interval) |"
    lines = [f"### {scaling.title}", "", header, "|---|---|---|"]
    curves = {}
    for label, points in scaling.curves:
        found = [(x, heldout.interval(os.path.join(workdir, run), scaling.split)) for run, x in points]
        curves[label] = [(x, e) for x, e in found if e is not None]
        lines += [f"| {label} | {x:.3g} | {e if e is not None else 'not run'} |" for x, e in found]
    marks = {}
    for label, run, x in scaling.get("marks", ()):
        e = heldout.interval(os.path.join(workdir, run), scaling.split)
        if e is not None:
            marks[label] = (x, e)
        lines.append(f"| {label} | {x:.3g} | {e if e is not None else 'not run'} |")
    references = {}
    for label, correct, photos in scaling.get("paper", ()):
        references[label] = report.Estimate(correct / photos, *stats.wilson_interval(correct, photos))
        lines.append(f"| {label} | — | {references[label]} |")
    path = report.scaling_curve(
        curves, os.path.join(workdir, "figures", "scaling.png"), scaling.xlabel, marks, references
    )
    caption = f"{scaling.title}: held-out top-1 with its 95 % Wilson interval"
    return "\n".join(lines) + "\n", (caption, str(path))


def _run_numbers(run_config, workdir: str, name: str) -> dict[str, float]:
    """'split/metric' -> value of one run of the suite (baselines: 'baseline_name/split/metric')."""
    sub = os.path.join(workdir, name)
    if run_config.get("kind") == "prior":
        return {f"{b}/{k}": v for b, found in baselines.numbers(sub).items() for k, v in found.items()}
    return outcomes.numbers(run_config, sub) if os.path.isfile(os.path.join(sub, "metrics.jsonl")) else {}


def _report_markdown(config, runs, results: str, figures, run_files, workdir: str, clock, checked: str) -> str:
    lines = [f"# {config.suite.title}", ""]
    if config.suite.notes:
        lines += [str(note) for note in config.suite.notes] + [""]
    if clock is not None:
        starts = f" over {clock['starts']} starts" if clock["starts"] > 1 else ""
        minutes = clock["seconds"] / 60
        lines += [f"All {len(runs)} runs took {minutes:.1f} minutes (wall clock{starts}, before this report).", ""]
    computed_with = environment.summary(workdir, runs)
    if computed_with:
        lines += [f"Computed with {computed_with}.", ""]
    if checked:
        lines += [checked]
    lines += [
        "## Results (the paper's numbers beside ours; also in [results.md](results.md))",
        "",
        results,
        "## Figures",
        "",
    ]
    for caption, figure in figures:
        rel = os.path.relpath(figure, workdir)
        lines += [f"**{caption}.**", "", f"![{caption}]({rel})", ""]
    lines += ["## Training curves (loss and main metric per epoch; paper B, Figs. 2, 4, 6, 7)", ""]
    for name, files in run_files.items():
        curves = os.path.relpath(files[0], workdir)
        lines += [
            f"**{runs[name].report.row}** (`{name}/`: checkpoints, metrics.jsonl, TensorBoard events, "
            f"[results.md]({name}/results.md))",
            "",
            f"![curves of {name}]({curves})",
            "",
        ]
    return "\n".join(lines)
