"""A suite's cross-validation (`config.suite.cross_validation`): which setting and how many passes
score best on folds of the training photos, from the fold runs' own per-epoch scores.

    title     the table's title
    split     the split every fold run scores each epoch ('fold': config.cv_folds)
    metric    the metric compared (higher is better), e.g. 'accuracy'
    settings  ((label, epochs a pass, (fold run, ...)), ...): one row each
    passes    the numbers of passes compared: one column each
    used      (label, passes): what the experiment itself runs, named beside the best

Each cell is the mean over the folds of the metric at the end of that pass, its standard error
(the folds' spread over the square root of their number) and the lowest and highest fold. The
rule, fixed before any fold was scored: the experiment's own setting stands if its mean is
within one standard error of the best cell's; else the best replaces it. The record is what
tables.cross_validation renders and figures draws.
"""

from __future__ import annotations

import os

import numpy as np

from jaxvision.research import figures
from jaxvision.train.logs import read_history


def _scores(workdir: str, split: str, metric: str) -> dict[int, float]:
    """epoch -> the run's `split/metric` after it."""
    records = read_history(os.path.join(workdir, "metrics.jsonl"))
    return {int(r["epoch"]): float(r[metric]) for r in records if r.get("split") == split and metric in r}


def summary(spec, workdir: str) -> dict:
    """The cross-validation record of the suite in `workdir`, its figure drawn."""
    rows = []
    for label, per_pass, names in spec.settings:
        scored = [_scores(os.path.join(workdir, name), spec.split, spec.metric) for name in names]
        cells = []
        for passes in spec.passes:
            found = [s[per_pass * passes - 1] for s in scored if per_pass * passes - 1 in s]
            done = len(found) == len(names)
            se = float(np.std(found, ddof=1) / np.sqrt(len(found))) if done and len(found) > 1 else 0.0
            cells.append(
                dict(passes=passes, mean=float(np.mean(found)), se=se, low=min(found), high=max(found))
                if done
                else None
            )
        rows.append(dict(label=label, folds=len(names), cells=cells))
    ranked = [(c["mean"], c["se"], row["label"], c["passes"]) for row in rows for c in row["cells"] if c is not None]
    best = max(ranked, key=lambda r: r[0]) if ranked else None
    used_label, used_passes = spec.used
    used = next((m for m, _, label, p in ranked if (label, p) == (used_label, used_passes)), None)
    curves = {row["label"]: [c for c in row["cells"] if c is not None] for row in rows}
    path = figures.cross_validation_curves(
        curves, os.path.join(workdir, "figures", "cross_validation.png"), f"{spec.split} {spec.metric}"
    )
    return {
        "title": spec.title,
        "metric": f"{spec.split}/{spec.metric}",
        "passes": list(spec.passes),
        "rows": rows,
        "best": None if best is None else dict(mean=best[0], se=best[1], label=best[2], passes=best[3]),
        "used": dict(
            label=used_label,
            passes=used_passes,
            mean=used,
            stands=None if used is None or best is None else bool(best[0] - used <= best[1]),
        ),
        "figure": {
            "caption": f"{spec.title}: mean over the folds after each pass, shaded from the lowest fold to the highest",
            "path": os.path.relpath(path, workdir),
        },
    }
