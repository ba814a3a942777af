"""Several runs, each in its own sub-workdir, and reports people can read.

A suite config (experiments/quickstart.py, the `table*` variants of paper B's files) holds

    config.suite.title   the report's title
    config.suite.order   run names, in the order they run (a later run may start from an
                         earlier one: `config.init.workdir` may name a run of the suite)
    config.suite.processes optional: on CPUs, run the runs side by side in single-core
                         processes, this many at once (0: one per core; research/scheduled.py)
    config.suite.notes   lines printed at the top of report.md (scale, caveats)
    config.suite.claims  the paper's claims, checked on the runs' numbers (jaxvision/research/claims.py)
    config.suite.confusions  runs whose ten most confused class pairs and per-class accuracy
                         figure the report shows (classification runs; see jaxvision/research/heldout.py)
    config.suite.scaling optional: a held-out accuracy against a run setting (e.g. training
                         photos per class): title, xlabel, split, curves ((label, ((run, x),
                         ...)), ...), marks ((label, run, x), ...) and paper ((label,
                         correct, photos), ...); drawn as figures/scaling.png with intervals;
                         with extrapolate (target_label, target, at ((label, x), ...)) each
                         curve of 4 or more points is fitted and extrapolated
                         (jaxvision/research/scaling_fit.py)
    config.suite.cross_validation optional: settings scored on folds of the training photos
                         by their own runs, tabled and drawn (jaxvision/research/cross_validation.py)
    config.seed          every run's seed (default 0), replacing their own
    config.runs.NAME     an experiment config (run by `train.fit`), a PCA baseline
                         (`kind='pca'`: fitted on the training images of its `data`) or the
                         baselines of a task (`kind='prior'`, jaxvision/baselines.py); a run
                         with `optional=True` whose pretrained weights cannot be had is left
                         out (its rows and claims say so) instead of stopping the suite

Every run config carries `config.report`: its results `table` (title), `columns` ((name,
'split/metric', paper's value), ...), its `row` name, the metric keys of its `curves`, the
short `label` naming the run in its task's figure (train/tasks.py: reconstructions, overlays),
and optionally `extra_rows` of numbers the paper cites without a run. Each run's workdir gets
results.json (its record), curves.png, its figure and results.md; the suite's workdir gets
results.json (the record of the whole suite: every table, claim and held-out section, its wall
clock), and rendered from it results.md (one table per paper table, paper beside ours, with the
dataset and settings of every row), claims.md with each claim ✔ or ✘ (also printed at the
end), figures/ and report.md linking all of it. A suite started again in the same workdir
resumes: finished runs are only re-evaluated.
"""

from __future__ import annotations

import contextlib
import os
import time

import ml_collections
import tqdm

from jaxvision import stats, train
from jaxvision.research import (
    claims,
    cross_validation,
    environment,
    figures,
    heldout,
    results,
    runs,
    scaling_fit,
    scheduled,
    tables,
    wall_clock,
)
from jaxvision.research.results import Estimate
from jaxvision.weights import warmstart


def is_suite(config: ml_collections.ConfigDict) -> bool:
    return "suite" in config


def _say(message: str) -> None:
    tqdm.tqdm.write(message)


def resolved_runs(config, workdir: str) -> dict[str, ml_collections.ConfigDict]:
    """The suite's runs by name, resolved, with `init.workdir` naming a run of the suite made a path."""
    found = {}
    for name in config.suite.order:
        if name not in config.runs:
            raise ValueError(f"config.suite.order names {name!r}, but config.runs has only {', '.join(config.runs)}.")
        run = train.resolve(config.runs[name])
        if "seed" in config:  # the suite's seed is every run's (e.g. --config.seed=1 on the quickstart)
            run.seed = config.seed
        if run.get("init") is not None and run.init.get("workdir") in config.runs:
            run.init.workdir = os.path.join(workdir, run.init.workdir)
        found[name] = run if run.get("kind") in runs.UNTRAINED else warmstart.bind(run, os.path.join(workdir, name))
    return found


def run(config: ml_collections.ConfigDict, workdir: str) -> tuple[str, bool]:
    """Runs every run of the suite in order, then writes the report; returns one line for people
    and whether a signal stopped it (to be resumed)."""
    workdir = os.path.abspath(workdir)
    found = resolved_runs(config, workdir)
    started, count = time.time(), scheduled.processes(config)
    stopped = scheduled.run(found, workdir, count, _say) if count else _one_after_another(found, workdir)
    wall_clock.add(workdir, time.time() - started)
    if stopped:  # SIGTERM / Ctrl-C stops the suite, not just a run
        return stopped, True
    with scheduled.one_core() if count else contextlib.nullcontext():
        path = write_report(config, workdir)
    shown = tables.claims(results.read(workdir)["claims"])
    return f"{shown}{len(found)} runs finished in {(time.time() - started) / 60:.1f} min; the report is {path}.", False


def _one_after_another(found: dict, workdir: str) -> str | None:
    """Runs `found` in this process, in order; None, or the line saying where a signal stopped it."""
    for i, (name, run_config) in enumerate(found.items(), start=1):
        sub = os.path.join(workdir, name)
        _say(f"[{i}/{len(found)}] {name}: {run_config.report.row}  ({sub})")
        stopped = runs.of(run_config).run(run_config, sub)
        if stopped:
            return f"{stopped} The suite stopped during run {name}; it resumes from there."
    return None


def write_report(config: ml_collections.ConfigDict, workdir: str) -> str:
    """The suite's results.json from its runs' records, then results.md, claims.md, figures/ and
    report.md rendered from it; returns report.md's path."""
    workdir = os.path.abspath(workdir)
    found = resolved_runs(config, workdir)
    done = {name: runs.of(c).result(c, os.path.join(workdir, name)) for name, c in found.items()}
    numbers = {name: r.record["numbers"] for name, r in done.items()}
    record = {
        "kind": "suite",
        "title": config.suite.title,
        "notes": [str(note) for note in config.suite.notes],
        "runs": list(found),
        "wall_clock": wall_clock.recorded(workdir),
        "computed_with": environment.summary(workdir, found),
        "tables": results.merge([t for r in done.values() for t in r.record["tables"]]),
        "confusions": [c for name in config.suite.get("confusions", ()) for c in done[name].record["confusions"]],
        "scaling": _scaling(config.suite.scaling, workdir) if config.suite.get("scaling") else None,
        "cross_validation": (
            cross_validation.summary(config.suite.cross_validation, workdir)
            if config.suite.get("cross_validation")
            else None
        ),
        "claims": claims.checked(
            config.suite.get("claims", ()),
            lambda name: numbers.get(name, {}),  # a run left out of suite.order: "not measured"
            lambda name, split: heldout.correct(os.path.join(workdir, name), split),
        ),
        "figures": _figures(workdir, done),  # then the held-out ones, below
        "curves": [
            {"run": name, "row": found[name].report.row, "path": os.path.relpath(r.files[0], workdir)}
            for name, r in done.items()
            if r.record["kind"] == "trained"
        ],
    }
    record["figures"] += _held_out_figures(record, workdir)
    results.write(workdir, record)
    return _render(results.read(workdir), workdir)


def _render(record: dict, workdir: str) -> str:
    """results.md, claims.md and report.md of a suite's record; returns report.md's path."""
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(tables.results(record))
    checked = tables.claims(record["claims"])
    if checked:
        with open(os.path.join(workdir, "claims.md"), "w") as f:
            f.write(checked)
    path = os.path.join(workdir, "report.md")
    with open(path, "w") as f:
        f.write(_report_markdown(record))
    return path


def _figures(workdir: str, done: dict) -> list[dict]:
    """{'caption', 'path'} of the suite's comparison figures (drawn into workdir/figures) and of
    the per-class accuracy of the runs whose confusions it shows."""
    shown: dict[str, dict] = {}
    for r in done.values():
        if r.shown is not None:
            kind = shown.setdefault(r.record["figure"], {**r.shown, "outputs": {}})
            kind["outputs"].update(r.shown["outputs"])
    drawn = []
    if "reconstruction" in shown:
        s = shown["reconstruction"]
        path = figures.reconstruction_grid(
            s["image"], s["outputs"], os.path.join(workdir, "figures", "reconstructions.png")
        )
        caption = (
            "Originals (top row) and their reconstructions by each autoencoder and by PCA "
            "(validation images; paper B, Fig. 3)"
        )
        drawn.append({"caption": caption, "path": path})
    if "segmentation" in shown:
        s = shown["segmentation"]
        path = figures.segmentation_overlays(
            s["image"], s["target"], s["outputs"], os.path.join(workdir, "figures", "segmentation.png")
        )
        caption = "Image, target mask (red) and each model's prediction (blue), validation images (paper B, Fig. 8)"
        drawn.append({"caption": caption, "path": path})
    return [{"caption": d["caption"], "path": os.path.relpath(d["path"], workdir)} for d in drawn]


def _scaling(scaling, workdir: str) -> dict:
    """The scaling table's points (their estimates from the runs' kept predictions), with the
    figure drawn from them."""
    points, curves, marks, references = [], {}, {}, {}
    for label, found in scaling.curves:
        drawn = [(x, heldout.interval(os.path.join(workdir, name), scaling.split)) for name, x in found]
        curves[label] = [(x, e) for x, e in drawn if e is not None]
        points += [{"label": label, "x": x, "estimate": e} for x, e in drawn]
    for label, name, x in scaling.get("marks", ()):
        e = heldout.interval(os.path.join(workdir, name), scaling.split)
        if e is not None:
            marks[label] = (x, e)
        points.append({"label": label, "x": x, "estimate": e})
    for label, correct, photos in scaling.get("paper", ()):
        references[label] = Estimate(correct / photos, *stats.wilson_interval(correct, photos))
        points.append({"label": label, "x": None, "estimate": references[label]})
    fits = _scaling_fits(scaling, workdir) if scaling.get("extrapolate") else []
    drawn_fits = {f["label"]: (scaling_fit.Fit(**f["fit"]), _fit_reach(f)) for f in fits}
    path = figures.scaling_curve(
        curves, os.path.join(workdir, "figures", "scaling.png"), scaling.xlabel, marks, references, drawn_fits
    )
    return {
        "title": scaling.title,
        "xlabel": scaling.xlabel,
        "split": scaling.split,
        "points": points,
        "fits": fits,
        "figure": {
            "caption": f"{scaling.title}: held-out top-1 with its 95 % Wilson interval",
            "path": os.path.relpath(path, workdir),
        },
    }


def _scaling_fits(scaling, workdir: str) -> list[dict]:
    """Each curve's fit and extrapolation (curves of too few points or without kept predictions
    are left out)."""
    wanted, fits = scaling.extrapolate, []
    for label, found in scaling.curves:
        hits = [heldout.correct(os.path.join(workdir, name), scaling.split) for name, _ in found]
        if len(found) < scaling_fit.MIN_POINTS or any(h is None for h in hits):
            continue
        fitted = scaling_fit.extrapolate([x for _, x in found], hits, wanted.target, at=[x for _, x in wanted.at])
        for (name, _), point in zip(wanted.at, fitted["at"]):
            point["label"] = name
        fits.append({"label": label, "target_label": wanted.target_label, **fitted})
    return fits


def _fit_reach(found: dict) -> float:
    """How far right the figure draws a fit: to where it reaches the target, or the farthest x asked."""
    ends = [found["reach"][0], *(p["x"] for p in found["at"])]
    return max((e for e in ends if e < float("inf")), default=0.0)


def _held_out_figures(record: dict, workdir: str) -> list[dict]:
    found = [
        {
            "caption": f"Per-class held-out accuracy of {c['title']} ({c['split']})",
            "path": os.path.relpath(c["figure"], workdir),
        }
        for c in record["confusions"]
    ]
    found += [record["scaling"]["figure"]] if record.get("scaling") else []
    return found + ([record["cross_validation"]["figure"]] if record.get("cross_validation") else [])


def _report_markdown(record: dict) -> str:
    lines = [f"# {record['title']}", ""]
    if record["notes"]:
        lines += record["notes"] + [""]
    clock = record.get("wall_clock")
    if clock is not None:
        starts = f" over {clock['starts']} starts" if clock["starts"] > 1 else ""
        minutes = clock["seconds"] / 60
        lines += [
            f"All {len(record['runs'])} runs took {minutes:.1f} minutes (wall clock{starts}, before this report).",
            "",
        ]
    if record.get("computed_with"):
        lines += [f"Computed with {record['computed_with']}.", ""]
    checked = tables.claims(record["claims"])
    if checked:
        lines += [checked]
    lines += [
        "## Results (the paper's numbers beside ours; also in [results.md](results.md))",
        "",
        tables.results(record),
        "## Figures",
        "",
    ]
    for figure in record["figures"]:
        caption = figure["caption"]
        lines += [f"**{caption}.**", "", f"![{caption}]({figure['path']})", ""]
    lines += ["## Training curves (loss and main metric per epoch; paper B, Figs. 2, 4, 6, 7)", ""]
    for curves in record["curves"]:
        name = curves["run"]
        lines += [
            f"**{curves['row']}** (`{name}/`: checkpoints, metrics.jsonl, TensorBoard events, "
            f"[results.md]({name}/results.md))",
            "",
            f"![curves of {name}]({curves['path']})",
            "",
        ]
    return "\n".join(lines)
