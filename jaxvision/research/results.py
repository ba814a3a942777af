"""WORKDIR/results.json: what a run or a suite found, as data, from which every table is rendered.

A run's record (`run_record`) holds its table's title and columns, its rows (the paper's value
and ours in each column, a held-out accuracy with its 95 % interval), the reported epoch, the
epochs run and their training seconds, the numbers its claims may name ('split/metric' ->
value), its settings line and its confusion summaries. A suite's record holds its runs' tables,
its held-out sections (confusions, scaling), its claims with the numbers behind each, its wall
clock, what it was computed with and when. results.md, claims.md and report.md are rendered
from these records (`tables`), and `publish` reads only them.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections.abc import Mapping, Sequence

FILE = "results.json"


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A held-out proportion with its 95 % interval."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.4f} ({self.low:.3f}-{self.high:.3f})"


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a results table: its title, the run's 'split/metric' and the paper's value."""

    title: str
    metric: str
    paper: float | str | None = None


def columns(report) -> tuple[Column, ...]:
    """The columns of a run config's `report` (experiment files write them as (title, metric, paper))."""
    return tuple(c if isinstance(c, Column) else Column(*c) for c in report.columns)


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of a results table: what was run, the paper's number and ours, by column title."""

    name: str
    paper: Mapping[str, float | str | None]
    ours: Mapping[str, float | str | Estimate | None]


@dataclasses.dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...] = ()
    notes: tuple[str, ...] = ()  # one settings line per run, shown in docs/results.md, not the README


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a finished run of a suite gives it: its record (results.json), the examples its
    figure drew (image, target, output; None without a figure) and the files written for people."""

    record: dict
    shown: dict | None = None
    files: tuple[str, ...] = ()


def _plain(value):
    """`value` as JSON data: an Estimate becomes {'value', 'low', 'high'}."""
    if isinstance(value, Estimate):
        return dataclasses.asdict(value)
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _cell(value):
    return Estimate(**value) if isinstance(value, dict) and set(value) == {"value", "low", "high"} else value


def table_from(found: Mapping) -> Table:
    return Table(
        title=found["title"],
        columns=tuple(Column(**c) for c in found["columns"]),
        rows=tuple(
            Row(r["name"], {k: _cell(v) for k, v in r["paper"].items()}, {k: _cell(v) for k, v in r["ours"].items()})
            for r in found["rows"]
        ),
        notes=tuple(found.get("notes", ())),
    )


def write(workdir: str, record: Mapping) -> str:
    """Writes `record` (dataclasses and Estimates become plain JSON) with the time it was written."""
    path = os.path.join(workdir, FILE)
    stamped = {**_plain(record), "written": datetime.datetime.now().isoformat(timespec="seconds")}
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        json.dump(stamped, f, indent=2, ensure_ascii=False)
    os.replace(temporary, path)  # a reader never sees half a record
    return path


def read(workdir: str) -> dict | None:
    """The record in `workdir`, or None when there is none (or it is not a results record)."""
    try:
        with open(os.path.join(workdir, FILE)) as f:
            found = json.load(f)
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and "kind" in found else None


def tables_of(record: Mapping) -> list[Table]:
    return [table_from(t) for t in record.get("tables", ())]


def merge(tables: Sequence[Table]) -> list[Table]:
    """Tables of the same title joined in order (several runs fill one paper table)."""
    joined: dict[str, Table] = {}
    for t in tables:
        if t.title in joined:
            old = joined[t.title]
            t = Table(t.title, old.columns, old.rows + t.rows, old.notes + t.notes)
        joined[t.title] = t
    return list(joined.values())
