"""Markdown rendered from results records (results.py): the results tables, the claims, the
confusion summaries, the scaling and the cross-validation tables. Nothing here reads a file or
computes a number, so a report and the published docs render the same record alike."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from jaxvision.research.results import Estimate, Row, Table, tables_of


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def results_table(title: str, columns: Sequence[str], rows: Sequence[Row], note: str = "", level: int = 3) -> str:
    """A markdown table with, for every column the paper gives a number in, the paper's beside ours;
    its title a heading of `level`."""
    cited = {c for c in columns if any(row.paper.get(c) is not None for row in rows)}
    sides = [(c, who) for c in columns for who in (("paper", "ours") if c in cited else ("ours",))]
    header = ["run"] + [f"{c} ({who})" if c in cited else c for c, who in sides]
    lines = [f"{'#' * level} {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.name] + [_cell((row.paper if who == "paper" else row.ours).get(c)) for c, who in sides]
        lines.append("| " + " | ".join(cells) + " |")
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def table(t: Table, settings: bool = True, level: int = 3) -> str:
    """One results table; without `settings`, the runs' settings lines are left out."""
    note = "\n".join(t.notes) if settings else ""
    return results_table(t.title, [c.title for c in t.columns], t.rows, note, level)


def claims(checked: Sequence[Mapping], heading: bool = True) -> str:
    """The claims with ✔ / ✘ and the numbers behind each ('' without claims)."""
    if not checked:
        return ""
    lines = ["### The paper's claims, checked on this run", ""] if heading else []
    lines += ["| claim | numbers | holds |", "|---|---|---|"]
    lines += [f"| {c['text']} | {c['shown']}{c.get('noise', '')} | {'✔' if c['holds'] else '✘'} |" for c in checked]
    held = sum(bool(c["holds"]) for c in checked)
    return "\n".join(lines + ["", f"{held} of {len(checked)} claims hold.", ""])


def confusions(found: Mapping) -> str:
    """The most confused class pairs of one run's split, and its best and worst classes."""
    pairs = found["pairs"]
    lines = [
        f"#### {found['title']}: the {len(pairs)} class pairs most often confused ({found['split']})",
        "",
        "| class A | class B | A taken for B | B taken for A |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {ab} | {ba} |" for a, b, ab, ba in pairs),
        "",
        f"Classes with every {found['split']} photo right: {found['perfect']} of {found['classes']}; the worst: "
        + ", ".join(f"{name} {accuracy:.2f}" for name, accuracy in found["worst"])
        + ".",
    ]
    return "\n".join(lines) + "\n"


def _estimate(value) -> str:
    if value is None:
        return "not run"
    return str(value if isinstance(value, Estimate) else Estimate(**value))


def scaling(found: Mapping, level: int = 3) -> str:
    """The scaling table: each point's held-out top-1 with its interval ('—' where x is unknown)."""
    lines = [
        f"{'#' * level} {found['title']}",
        "",
        f"| run | {found['xlabel']} | held-out top-1 (95 % interval) |",
        "|---|---|---|",
    ]
    for point in found["points"]:
        x = "—" if point["x"] is None else f"{point['x']:.3g}"
        lines.append(f"| {point['label']} | {x} | {_estimate(point['estimate'])} |")
    return "\n".join(lines + _scaling_fits(found.get("fits", ()), found["xlabel"])) + "\n"


def _scaling_fits(fits, xlabel: str) -> list[str]:
    """Each fitted curve's ceiling, where it reaches the target and what it says at the x asked."""
    if not fits:
        return []
    asked = [p["label"] for p in fits[0]["at"]]
    lines = [
        "",
        "Extrapolated: held-out top-1 = ceiling - b * x^-a fitted to each curve by least squares (at most 1); "
        f"95 % intervals from {fits[0]['samples']} resamples of the held-out photos, each refitted "
        "(the training photos behind each point held fixed):",
        "",
        "| "
        + " | ".join(["curve", "fit", "ceiling", f"{xlabel} to reach {fits[0]['target_label']}"])
        + "".join(f" | top-1 at {a}" for a in asked)
        + " |",
        "|---|---|---|---|" + "---|" * len(asked),
    ]
    for f in fits:
        c, b, a = f["fit"]["ceiling"], f["fit"]["scale"], f["fit"]["exponent"]
        cells = [
            f["label"],
            f"{c:.3f} - {b:.3f} x^-{a:.3f}",
            _triple(f["ceiling"], "{:.3f}"),
            _triple(f["reach"], "{:.0f}"),
            *(_triple(p["accuracy"], "{:.3f}") for p in f["at"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _triple(found, form: str) -> str:
    """value (low-high), 'never' for an infinite x."""
    text = lambda v: "never" if v == float("inf") else form.format(v)
    value, low, high = found
    return f"{text(value)} ({text(low)}-{text(high)})"


def cross_validation(found: Mapping, level: int = 3) -> str:
    """The cross-validation table: each setting's mean fold score after each number of passes
    (lowest to highest fold), the best in bold, and what the experiment uses beside it."""
    lines = [
        f"{'#' * level} {found['title']}",
        "",
        f"Mean {found['metric']} over the folds ± its standard error (lowest-highest fold), by passes over each copy:",
        "",
        "| setting | " + " | ".join(f"{p} passes" for p in found["passes"]) + " |",
        "|---|" + "---:|" * len(found["passes"]),
    ]
    best = found["best"]
    for row in found["rows"]:
        cells = []
        for cell in row["cells"]:
            if cell is None:
                cells.append("not run")
                continue
            text = f"{cell['mean']:.4f} ± {cell['se']:.4f} ({cell['low']:.3f}-{cell['high']:.3f})"
            chosen = best is not None and (row["label"], cell["passes"]) == (best["label"], best["passes"])
            cells.append(f"**{text}**" if chosen else text)
        lines.append(f"| {row['label']} ({row['folds']} folds) | " + " | ".join(cells) + " |")
    used = found["used"]
    if best is not None:
        runs = f"the experiment runs {used['label']} at {used['passes']} passes"
        if used["mean"] is None:
            verdict = f"{runs}, which was not cross-validated."
        else:
            verdict = f"{runs} ({used['mean']:.4f}, {used['mean'] - best['mean']:+.4f}): " + (
                "within one standard error of the best, so it stands."
                if used["stands"]
                else "more than one standard error below the best, which should replace it."
            )
        best_text = f"{best['label']} at {best['passes']} passes ({best['mean']:.4f} ± {best['se']:.4f})"
        lines += ["", f"Best: {best_text}; {verdict}"]
    return "\n".join(lines) + "\n"


def results(record: Mapping, settings: bool = True, level: int = 3) -> str:
    """A suite's results.md from its record (results.py): its tables, then its held-out sections
    (confusions, the scaling table); without `settings`, the runs' settings lines are left out."""
    parts = ["\n".join(table(t, settings, level) for t in tables_of(record))]
    parts += [confusions(c) for c in record.get("confusions", ())]
    if record.get("scaling"):
        parts.append(scaling(record["scaling"], level))
    if record.get("cross_validation"):
        parts.append(cross_validation(record["cross_validation"], level))
    return "\n".join(parts)
