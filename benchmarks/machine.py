"""What a benchmark's report says about the machine it ran on: CPU, packages, accelerator."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import sys


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def versions(dists) -> str:
    return ", ".join(f"{d} {version(d)}" for d in dists)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def accelerator_present() -> bool:
    """Whether jax sees a GPU or TPU, asked in a child process so that this one holds no device memory."""
    code = "import jax; print(jax.default_backend())"
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    return found.returncode == 0 and found.stdout.split()[-1:] != ["cpu"]
