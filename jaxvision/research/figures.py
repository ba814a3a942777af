"""Figures drawn next to a run and a suite: curves, reconstructions, overlays, per-class
accuracy and the scaling curve.

Everything here takes plain numbers and numpy arrays, so it can redraw a finished run from its
`metrics.jsonl` without touching a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (headless clusters)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxvision.research.results import Estimate  # noqa: E402
from jaxvision.train.logs import epoch_series  # noqa: E402


def plot_curves(
    history: Sequence[Mapping],
    keys: Sequence[str],
    path: str | Path,
    title: str = "",
    splits: Sequence[str] = ("train", "validation"),
) -> Path:
    """One panel per metric key, one line per split, against the epoch (paper B Figs. 2, 4, 6, 7)."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for split in splits:
            epochs, values = epoch_series(history, split, key)
            if epochs:
                ax.plot(epochs, values, marker="o", markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _show(ax, image: np.ndarray, title: str = "") -> None:
    image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0.0, vmax=1.0)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def reconstruction_grid(originals: np.ndarray, reconstructions: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Originals on the first row, then one row per model's reconstructions (paper B Fig. 3).

    Images are `[N, H, W, C]` with values in [0, 1].
    """
    rows = [("original", originals), *reconstructions.items()]
    n = len(originals)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.7 * len(rows)), squeeze=False)
    for r, (name, images) in enumerate(rows):
        for c in range(n):
            _show(axes[r, c], images[c])
        axes[r, 0].set_ylabel(name, fontsize=8)
    return _save(fig, path)


def overlay(image: np.ndarray, mask: np.ndarray, color=(1.0, 0.2, 0.2), alpha: float = 0.5) -> np.ndarray:
    """An RGB picture of `image` with the pixels of a binary `mask` tinted in `color`."""
    rgb = np.asarray(image, np.float32)
    rgb = np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb[..., :3]
    m = (np.asarray(mask).reshape(rgb.shape[:2]) >= 0.5)[..., None]
    return np.where(m, (1 - alpha) * rgb + alpha * np.asarray(color, np.float32), rgb)


def segmentation_overlays(
    images: np.ndarray,
    targets: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    path: str | Path,
) -> Path:
    """Per example: the image, the target overlaid, then each model's prediction (Fig. 8)."""
    columns = ["image", "target", *predictions]
    n = len(images)
    fig, axes = plt.subplots(n, len(columns), figsize=(1.9 * len(columns), 1.9 * n), squeeze=False)
    for r in range(n):
        panels = [images[r], overlay(images[r], targets[r])]
        panels += [overlay(images[r], pred[r], color=(0.2, 0.6, 1.0)) for pred in predictions.values()]
        for c, panel in enumerate(panels):
            _show(axes[r, c], panel, columns[c] if r == 0 else "")
    return _save(fig, path)


def per_class_accuracy(accuracy: np.ndarray, names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Each class's accuracy as a bar, sorted from worst to best; the worst ten are named."""
    known = np.flatnonzero(~np.isnan(accuracy))
    order = known[np.argsort(accuracy[known], kind="stable")]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.09 * len(order) + 2), 3.6))
    ax.bar(np.arange(len(order)), accuracy[order], width=0.85, color="tab:blue")
    shown = min(10, len(order))
    ax.set_xticks(np.arange(shown), [names[i] for i in order[:shown]], rotation=90, fontsize=7)
    ax.set_xlim(-1, len(order))
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("held-out top-1 accuracy")
    ax.set_xlabel(f"{len(order)} classes, worst first (the worst {shown} named)")
    ax.axhline(float(np.nanmean(accuracy)), color="tab:red", lw=1, label="mean over classes")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def scaling_curve(
    curves: Mapping[str, Sequence[tuple[float, Estimate]]],
    path: str | Path,
    xlabel: str,
    marks: Mapping[str, tuple[float, Estimate]] = {},
    references: Mapping[str, Estimate] = {},
    fits: Mapping[str, tuple] = {},
    ylabel: str = "held-out top-1 accuracy",
) -> Path:
    """One line per curve of (x, estimate) points with their intervals as error bars, x on a
    log2 axis; `marks` are single runs drawn as points; `references` (e.g. a paper's number,
    whose x is unknown) are horizontal lines with their interval shaded; `fits` (curve name:
    (callable fit, x to draw it to)) are dotted lines in their curve's colour."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    bars = lambda e: [[v.value - v.low for v in e], [v.high - v.value for v in e]]
    for name, points in curves.items():
        e = [v for _, v in points]
        line = ax.errorbar(
            [x for x, _ in points], [v.value for v in e], yerr=bars(e), marker="o", capsize=3, label=name
        )
        if name in fits and points:
            curve, end = fits[name]
            xs = np.geomspace(points[0][0], max(end, points[-1][0]), 200)
            ax.plot(xs, curve(xs), ls=":", color=line.lines[0].get_color(), label=f"{name}: fit")
    for name, (x, e) in marks.items():
        ax.errorbar([x], [e.value], yerr=bars([e]), marker="s", capsize=3, linestyle="none", label=name)
    for i, (name, e) in enumerate(references.items()):
        color = f"C{len(curves) + len(marks) + i}"
        ax.axhline(e.value, color=color, lw=1, ls="--", label=name)
        ax.axhspan(e.low, e.high, color=color, alpha=0.15)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def cross_validation_curves(curves: Mapping[str, Sequence[Mapping]], path: str | Path, ylabel: str) -> Path:
    """One line per setting of its mean over the folds against passes, shaded from the lowest to
    the highest fold (cells of jaxvision/research/cross_validation.py)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (name, cells) in enumerate(curves.items()):
        x = [c["passes"] for c in cells]
        ax.plot(x, [c["mean"] for c in cells], marker="o", color=f"C{i}", label=name)
        ax.fill_between(x, [c["low"] for c in cells], [c["high"] for c in cells], color=f"C{i}", alpha=0.15)
    ax.set_xlabel("passes over each copy")
    ax.set_ylabel(f"{ylabel} (mean over the folds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
