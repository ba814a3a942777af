"""WORKDIR/wall_clock.json: the seconds of every start of a suite, before its reports.

A suite stopped and resumed adds each start's time, so its report and the published docs give
the time of all its starts; both read this record, never a sentence of a report.
"""

from __future__ import annotations

import json
import os

FILE = "wall_clock.json"


def recorded(workdir: str) -> dict | None:
    """{'seconds', 'starts'} so far, or None when the suite kept no record."""
    try:
        with open(os.path.join(workdir, FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def add(workdir: str, seconds: float) -> None:
    """Adds one start's seconds to the record."""
    record = recorded(workdir) or {"seconds": 0.0, "starts": 0}
    with open(os.path.join(workdir, FILE), "w") as f:
        json.dump({"seconds": record["seconds"] + seconds, "starts": record["starts"] + 1}, f)
