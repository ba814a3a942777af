"""Copies a finished suite's own tables into the docs, so that no number there is typed by hand.

    python -m jaxvision.publish runs/quickstart            # README.md and docs/results.md

Each target file marks the place with a pair of comments naming the suite's workdir:

    <!-- results of runs/quickstart: begin -->
    ... replaced by the run's claims (claims.md), its time and its tables (results.md) ...
    <!-- results of runs/quickstart: end -->

The README gets the claims and tables only; docs/results.md also the dataset and settings of
every row.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys

from jaxvision.research import environment, wall_clock

TARGETS = ("README.md", os.path.join("docs", "results.md"))
SHORT = ("README.md",)  # targets that leave out each row's settings


class PublishError(ValueError):
    pass


def _read(path: str, what: str) -> str:
    if not os.path.isfile(path):
        raise PublishError(f"{path} does not exist: {what}")
    with open(path) as f:
        return f.read()


def block(workdir: str, shown_as: str, settings: bool = True) -> str:
    """The markdown that stands for the suite in `workdir` (named `shown_as` in the text).

    Without `settings`, the lines giving each row's dataset and settings are left out."""
    _read(os.path.join(workdir, "report.md"), "run the suite to its end first (it writes report.md).")
    claims = _read(os.path.join(workdir, "claims.md"), "this suite checks no claims, or it has not finished.")
    results = _read(os.path.join(workdir, "results.md"), "run the suite to its end first.")
    clock = wall_clock.recorded(workdir)
    stamp = datetime.datetime.fromtimestamp(os.path.getmtime(os.path.join(workdir, "report.md")))
    claims = re.sub(r"^#+ [^\n]*\n+", "", claims.strip())  # the target file has its own heading
    results = re.sub(r"(?m)^### ", "#### ", re.sub(r"^# [^\n]*\n+", "", results.strip()))
    if not settings:
        results = re.sub(r"(?m)^- \*[^\n]*\n?", "", results)
        results = re.sub(r"\n{3,}", "\n\n", results).strip()
    timing = ""
    if clock:
        starts = f" over {clock['starts']} starts" if clock["starts"] > 1 else ""
        timing = f" (its runs took {clock['seconds'] / 60:.1f} minutes of wall clock{starts}, report aside)"
    runs = sorted(d for d in os.listdir(workdir) if os.path.isdir(os.path.join(workdir, d)))
    computed_with = environment.summary(workdir, runs)
    lines = [
        f"From the run in `{shown_as}` of {stamp:%Y-%m-%d}{timing}, copied from its claims.md and results.md "
        f"by `python -m jaxvision.publish {shown_as}`"
        + (f"; computed with {computed_with}" if computed_with else "")
        + ("" if settings else " (the settings of every row: [docs/results.md](docs/results.md))")
        + ":",
        "",
        claims,
        "",
        results,
    ]
    return "\n".join(lines)


def publish(workdir: str, targets=TARGETS, root: str = ".") -> list[str]:
    """Replaces the marked block of every target that has one; returns the files changed."""
    shown_as = os.path.relpath(os.path.abspath(workdir), os.path.abspath(root))
    begin, end = f"<!-- results of {shown_as}: begin -->", f"<!-- results of {shown_as}: end -->"
    texts = {settings: block(workdir, shown_as, settings) for settings in (True, False)}
    changed, marked = [], False
    for target in targets:
        path = os.path.join(root, target)
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            old = f.read()
        if begin not in old or end not in old.split(begin, 1)[1]:
            continue
        marked = True
        head, rest = old.split(begin, 1)
        text = texts[target not in SHORT]
        new = f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}"
        if new != old:
            with open(path, "w") as f:
                f.write(new)
            changed.append(target)
    if not marked:
        raise PublishError(
            f"No file of {', '.join(targets)} has the marker {begin!r}: add the begin and end "
            "markers where the results belong."
        )
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", help="a finished suite's workdir, e.g. runs/quickstart")
    args = parser.parse_args(argv)
    try:
        changed = publish(args.workdir)
    except PublishError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"Updated {', '.join(changed)}." if changed else "Nothing changed: the files already show this run.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
