"""A paper's claims checked against a suite's own numbers: ✔ or ✘, computed, never typed in.

A claim (in `config.suite.claims`) is a dict:

    text    what the paper says, in words
    left    (run, 'split/metric') of a run of the suite, or a number, or ('ratio', ref, ref)
    op      '>', '>=', '<' or '<='
    right   the same; several refs (a list) stand for their maximum
    factor  optional: the claim is `left op factor * right` (e.g. "at least twice")

A number that a run does not have makes its claim fail (✘, "not measured"), so a missing
result is never shown as support.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

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


def table(claims: Sequence, numbers_of: Callable[[str], dict]) -> str:
    """A markdown table of the claims with ✔ / ✘ and the numbers behind each ('' without claims)."""
    if not claims:
        return ""
    lines = ["### The paper's claims, checked on this run", "", "| claim | numbers | holds |", "|---|---|---|"]
    held = 0
    for claim in claims:
        holds, shown = check(claim, numbers_of)
        held += holds
        lines.append(f"| {claim['text']} | {shown} | {'✔' if holds else '✘'} |")
    return "\n".join(lines + ["", f"{held} of {len(claims)} claims hold.", ""])
