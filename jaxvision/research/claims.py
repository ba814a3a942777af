"""A paper's claims checked against a suite's own numbers: ✔ or ✘, computed, never typed in.

A claim (in `config.suite.claims`) is a dict:

    text    what the paper says, in words
    left    (run, 'split/metric') of a run of the suite, or a number, or ('ratio', ref, ref)
    op      '>', '>=', '<' or '<='
    right   the same; several refs (a list) stand for their maximum
    factor  optional: the claim is `left op factor * right` (e.g. "at least twice")

A number that a run does not have makes its claim fail (✘, "not measured"), so a missing
result is never shown as support. A claim that compares two runs' accuracies on the same
photos also says whether the difference is outside the noise of those photos: its paired
bootstrap interval (`stats.paired_difference`) from each run's kept predictions.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

from jaxvision import stats

OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _value(ref, numbers_of: Callable[[str], dict]) -> tuple[float | None, str]:
    """(value, how it reads) of a number, a (run, metric) ref or a list of refs (their maximum)."""
    if isinstance(ref, (int, float)):
        return float(ref), f"{ref:g}"
    if ref[0] == "ratio":
        (top, top_text), (bottom, bottom_text) = (_value(r, numbers_of) for r in ref[1:])
        value = None if top is None or bottom is None or bottom == 0 else top / bottom
        return value, f"({top_text} / {bottom_text}{f' = {value:.3g}' if value is not None else ''})"
    if ref and isinstance(ref[0], (list, tuple)):
        found = [_value(r, numbers_of) for r in ref]
        if any(v is None for v, _ in found):
            return None, " / ".join(s for _, s in found)
        best = max(range(len(found)), key=lambda i: found[i][0])
        return found[best][0], f"max({', '.join(s for _, s in found)})"
    run, metric = ref
    value = numbers_of(run).get(metric)
    return (None, f"{run} {metric}: not measured") if value is None else (float(value), f"{run} {metric} {value:.4g}")


def check(claim, numbers_of: Callable[[str], dict]) -> tuple[bool, str]:
    """(holds, the numbers behind it in words)."""
    left, left_text = _value(claim["left"], numbers_of)
    right, right_text = _value(claim["right"], numbers_of)
    factor = claim.get("factor", 1.0)
    shown = f"{left_text} {claim['op']} {f'{factor:g} x ' if factor != 1 else ''}{right_text}"
    if left is None or right is None:
        return False, shown
    return bool(OPS[claim["op"]](left, factor * right)), shown


def _paired(ref):
    """(run, split) of a run's accuracy ref, else None."""
    if isinstance(ref, (list, tuple)) and len(ref) == 2 and all(isinstance(r, str) for r in ref):
        split, _, name = ref[1].partition("/")
        if name == "accuracy":
            return ref[0], split
    return None


def noise(claim, correct_of: Callable[[str, str], object]) -> str:
    """'; difference ... (95 % ...): outside / within the noise' for two runs' accuracies on
    the same photos whose predictions were kept; '' otherwise."""
    left, right = _paired(claim["left"]), _paired(claim["right"])
    if left is None or right is None or left[1] != right[1] or claim.get("factor", 1.0) != 1.0:
        return ""
    a, b = correct_of(*left), correct_of(*right)
    if a is None or b is None or len(a) != len(b):
        return ""
    diff, low, high = stats.paired_difference(a, b)
    outside = low > 0 or high < 0
    return (
        f"; difference {diff:+.4f} (95 % paired bootstrap over the {len(a)} photos {low:+.3f} to {high:+.3f}): "
        f"{'outside' if outside else 'within'} the noise"
    )


def table(claims: Sequence, numbers_of: Callable[[str], dict], correct_of: Callable | None = None) -> str:
    """A markdown table of the claims with ✔ / ✘ and the numbers behind each ('' without claims);
    `correct_of(run, split)` gives a run's per-photo correctness, where it was kept."""
    if not claims:
        return ""
    lines = ["### The paper's claims, checked on this run", "", "| claim | numbers | holds |", "|---|---|---|"]
    held = 0
    for claim in claims:
        holds, shown = check(claim, numbers_of)
        shown += noise(claim, correct_of) if correct_of else ""
        held += holds
        lines.append(f"| {claim['text']} | {shown} | {'✔' if holds else '✘'} |")
    return "\n".join(lines + ["", f"{held} of {len(claims)} claims hold.", ""])
