"""Renders a finished suite's own record into the docs, so that no number there is typed by hand.

    python -m jaxvision.publish runs/quickstart            # README.md and docs/results.md

Each target file marks the place with a pair of comments naming the suite's workdir:

    <!-- results of runs/quickstart: begin -->
    ... replaced by the suite's claims, its time and its tables, rendered from its results.json ...
    <!-- results of runs/quickstart: end -->

The README gets the claims and tables only; docs/results.md also the dataset and settings of
every row.
"""

from __future__ import annotations

import argparse
import os
import sys

from jaxvision.research import results, tables

TARGETS = ("README.md", os.path.join("docs", "results.md"))
SHORT = ("README.md",)  # targets that leave out each row's settings


class PublishError(ValueError):
    pass


def block(workdir: str, shown_as: str, settings: bool = True) -> str:
    """The markdown that stands for the suite in `workdir` (named `shown_as` in the text),
    rendered from its results.json. Without `settings`, each row's settings are left out."""
    record = results.read(workdir)
    if record is None or record.get("kind") != "suite":
        raise PublishError(
            f"{os.path.join(workdir, results.FILE)} does not exist or is not a suite's record: "
            "run the suite to its end first (or `--mode report` on its workdir)."
        )
    if not record["claims"]:
        raise PublishError(f"{workdir}: this suite checks no claims, so there is nothing to publish.")
    clock = record.get("wall_clock")
    timing = ""
    if clock:
        starts = f" over {clock['starts']} starts" if clock["starts"] > 1 else ""
        timing = f" (its runs took {clock['seconds'] / 60:.1f} minutes of wall clock{starts}, report aside)"
    computed_with = record.get("computed_with")
    lines = [
        f"From the run in `{shown_as}` of {record['written'][:10]}{timing}, rendered from its results.json "
        f"by `python -m jaxvision.publish {shown_as}`"
        + (f"; computed with {computed_with}" if computed_with else "")
        + ("" if settings else " (the settings of every row: [docs/results.md](docs/results.md))")
        + ":",
        "",
        tables.claims(record["claims"], heading=False).strip(),
        "",
        tables.results(record, settings, level=4).strip(),
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
