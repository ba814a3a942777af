"""A paper's claims checked against a suite's own numbers: ✔ or ✘, computed, never typed in.

A claim (in `config.suite.claims`) is a dict, read into a `Claim`:

    text    what the paper says, in words
    left    (run, 'split/metric') of a run of the suite (a `Ref`), or a number, or
            ('ratio', ref, ref) (a `Ratio`)
    op      '>', '>=', '<' or '<='
    right   the same; several refs (a list) stand for their maximum (a `Best`)
    factor  optional: the claim is `left op factor * right` (e.g. "at least twice")

A number that a run does not have makes its claim fail (✘, "not measured"), so a missing
result is never shown as support. A claim that compares two runs' accuracies on the same
photos also says whether the difference is outside the noise of those photos: its paired
bootstrap interval (`stats.paired_difference`) from each run's kept predictions.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Union

from jaxvision import stats
from jaxvision.research import tables

OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclasses.dataclass(frozen=True)
class Ref:
    """A run's number: 'split/metric' (baselines: 'baseline/split/metric')."""

    run: str
    metric: str


@dataclasses.dataclass(frozen=True)
class Ratio:
    top: Operand
    bottom: Operand


@dataclasses.dataclass(frozen=True)
class Best:
    """The largest of several refs."""

    refs: tuple[Operand, ...]


Operand = Union[float, Ref, Ratio, Best]


@dataclasses.dataclass(frozen=True)
class Claim:
    text: str
    left: Operand
    op: str
    right: Operand
    factor: float = 1.0


def operand(ref) -> Operand:
    """The named record of a claim's side as experiment files write it."""
    if isinstance(ref, (int, float, Ref, Ratio, Best)):
        return float(ref) if isinstance(ref, int) else ref
    if ref[0] == "ratio":
        return Ratio(operand(ref[1]), operand(ref[2]))
    if ref and isinstance(ref[0], (list, tuple)):
        return Best(tuple(operand(r) for r in ref))
    return Ref(*ref)


def parse(claim: Mapping | Claim) -> Claim:
    if isinstance(claim, Claim):
        return claim
    if claim["op"] not in OPS:
        raise ValueError(f"Claim {claim['text']!r} has op {claim['op']!r}: use one of {', '.join(OPS)}.")
    factor = float(claim.get("factor", 1.0))
    return Claim(claim["text"], operand(claim["left"]), claim["op"], operand(claim["right"]), factor)


def _value(ref: Operand, numbers_of: Callable[[str], dict]) -> tuple[float | None, str]:
    """(value, how it reads) of an operand."""
    if isinstance(ref, float):
        return ref, f"{ref:g}"
    if isinstance(ref, Ratio):
        (top, top_text), (bottom, bottom_text) = (_value(r, numbers_of) for r in (ref.top, ref.bottom))
        value = None if top is None or bottom is None or bottom == 0 else top / bottom
        return value, f"({top_text} / {bottom_text}{f' = {value:.3g}' if value is not None else ''})"
    if isinstance(ref, Best):
        found = [_value(r, numbers_of) for r in ref.refs]
        if any(v is None for v, _ in found):
            return None, " / ".join(s for _, s in found)
        best = max(range(len(found)), key=lambda i: found[i][0])
        return found[best][0], f"max({', '.join(s for _, s in found)})"
    value = numbers_of(ref.run).get(ref.metric)
    if value is None:
        return None, f"{ref.run} {ref.metric}: not measured"
    return float(value), f"{ref.run} {ref.metric} {value:.4g}"


def check(claim, numbers_of: Callable[[str], dict]) -> tuple[bool, str]:
    """(holds, the numbers behind it in words)."""
    claim = parse(claim)
    left, left_text = _value(claim.left, numbers_of)
    right, right_text = _value(claim.right, numbers_of)
    shown = f"{left_text} {claim.op} {f'{claim.factor:g} x ' if claim.factor != 1 else ''}{right_text}"
    if left is None or right is None:
        return False, shown
    return bool(OPS[claim.op](left, claim.factor * right)), shown


def _paired(ref: Operand) -> tuple[str, str] | None:
    """(run, split) of a run's accuracy ref, else None."""
    if isinstance(ref, Ref):
        split, _, name = ref.metric.partition("/")
        if name == "accuracy":
            return ref.run, split
    return None


def noise(claim, correct_of: Callable[[str, str], object]) -> str:
    """'; difference ... (95 % ...): outside / within the noise' for two runs' accuracies on
    the same photos whose predictions were kept; '' otherwise."""
    claim = parse(claim)
    left, right = _paired(claim.left), _paired(claim.right)
    if left is None or right is None or left[1] != right[1] or claim.factor != 1.0:
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


def checked(claims: Sequence, numbers_of: Callable[[str], dict], correct_of: Callable | None = None) -> list[dict]:
    """Each claim as data: its text, record, verdict, the numbers behind it in words and the noise
    of a comparison of two runs' kept predictions (`correct_of(run, split)`)."""
    found = []
    for claim in map(parse, claims):
        holds, shown = check(claim, numbers_of)
        found.append(
            {
                "text": claim.text,
                "claim": claim,
                "holds": holds,
                "shown": shown,
                "noise": noise(claim, correct_of) if correct_of else "",
            }
        )
    return found


def table(claims: Sequence, numbers_of: Callable[[str], dict], correct_of: Callable | None = None) -> str:
    """The claims as a markdown table ('' without claims)."""
    return tables.claims(checked(claims, numbers_of, correct_of))
