"""What a suite's runs were computed with, from each run's environment.json (train/logs.py).

float32 results are exact only for one set of libraries, devices and XLA flags, so the report
and the published docs say which.
"""

from __future__ import annotations

import json
import os

FILE = "environment.json"
SHOWN = ("jax", "jaxlib", "backend", "device_kind", "devices", "host_cpu", "XLA_FLAGS", "onednn_convolutions")
_ABSENT = {"host_cpu": "", "onednn_convolutions": False}  # runs recorded before these were


def _phrase(record: dict) -> str:
    flags = f"XLA_FLAGS `{record['XLA_FLAGS']}`" if record.get("XLA_FLAGS") else "no XLA_FLAGS"
    kind = record["device_kind"]
    if record["backend"] == "cpu" and record.get("host_cpu"):
        kind = record["host_cpu"]  # 'cpu' says nothing; the model and its vector width do
    devices = f"{record['devices']} {record['backend']} device(s) ({kind})"
    onednn = ", oneDNN's convolutions (JAXVISION_ONEDNN=1)" if record["onednn_convolutions"] else ""
    return f"jax {record['jax']} (jaxlib {record['jaxlib']}) on {devices}, {flags}{onednn}"


def summary(workdir: str, runs) -> str | None:
    """One phrase for the runs in `workdir` named by `runs` that recorded theirs (one per distinct
    setting, with the runs that used it, when they differ); None when none did."""
    found: dict[str, list[str]] = {}
    for name in runs:
        try:
            with open(os.path.join(workdir, name, FILE)) as f:
                record = json.load(f)
        except (OSError, ValueError):
            continue
        found.setdefault(_phrase({k: record.get(k, _ABSENT.get(k, "?")) for k in SHOWN}), []).append(name)
    if not found:
        return None
    if len(found) == 1:
        return next(iter(found))
    return "; ".join(f"{', '.join(names)}: {phrase}" for phrase, names in found.items())
