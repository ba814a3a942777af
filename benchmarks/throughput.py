"""Interleaved timing of cases that each live in their own worker process.

Cases of one group are built one after another (so compilations do not overlap), then timed
round-robin A, B, C, A, B, C, ...: on a machine shared with other work, load then falls on
every case alike, and the median over rounds is compared. Besides images per wall-clock
second, images per CPU-second of the case's process are kept: on a shared machine that
figure moves far less with the others' load (time spent descheduled is not counted), though
it also counts threads that spin while they wait, which favours no framework in particular.

Each round runs one untimed step before the timed ones. A worker waits idle while the others
are timed, and on a VM whose balloon reports free pages to the host (this project's build
machine) the memory its allocator gave back meanwhile must be backed again: up to 3x the time
of a back-to-back step (benchmarks/RESULTS.md, "Run-to-run spread"). A training run's steps
follow one another, so the step after the untimed one is the one a run sees.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile

from benchmarks.specs import SPECS
from jaxvision import cpu_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_env(**extra) -> dict:
    """This process's environment for a child, with the repository first on PYTHONPATH."""
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    # Cases run side by side in their own processes: a GPU worker must not take 75% of the
    # device up front (JAX's default), or the second one runs out of memory.
    return {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", **os.environ, "PYTHONPATH": path, **extra}


def run_child(*argv: str, timeout: float | None = None, **env) -> subprocess.CompletedProcess:
    """`python ARGV...` from the repository root in a child process (environment `child_env(**env)`),
    its output captured as text."""
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=child_env(**env), capture_output=True, text=True, timeout=timeout
    )


@dataclasses.dataclass
class Case:
    label: str  # row name in the tables
    framework: str  # 'jaxvision' | 'keras' | 'torch'
    model: str  # a key of specs.SPECS
    mode: str = "train"  # 'train' | 'infer'
    variant: dict = dataclasses.field(default_factory=dict)
    xla_flags: str = ""  # over XLA_FLAGS of this case's process (jaxvision's CPU defaults included)
    env: dict = dataclasses.field(default_factory=dict)  # more environment for its process
    batch: int | None = None  # None: the spec's batch

    def payload(self) -> dict:
        return {
            "framework": self.framework,
            "model": self.model,
            "mode": self.mode,
            "variant": self.variant,
            "batch": self.batch,
        }

    @property
    def images_per_step(self) -> int:
        return self.batch or SPECS[self.model].batch


def chosen(cases: list[Case], prefixes: str) -> list[Case]:
    """The cases whose label starts with one of the comma-separated `prefixes` (all if none)."""
    return [c for c in cases if not prefixes or any(c.label.startswith(p) for p in prefixes.split(","))]


@dataclasses.dataclass
class Result:
    case: Case
    images_per_s: list = dataclasses.field(default_factory=list)
    images_per_cpu_s: list = dataclasses.field(default_factory=list)
    info: dict = dataclasses.field(default_factory=dict)
    memory: dict = dataclasses.field(default_factory=dict)
    error: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.images_per_s) if self.images_per_s else float("nan")

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.images_per_cpu_s) if self.images_per_cpu_s else float("nan")

    @property
    def spread(self) -> tuple[float, float]:
        return (min(self.images_per_s), max(self.images_per_s)) if self.images_per_s else (0, 0)

    @property
    def rate(self) -> tuple[str, str]:
        """The 'images/s (median)' and 'min-max' cells of a timing table."""
        lo, hi = self.spread
        return f"{self.median:.2f}", f"{lo:.2f}-{hi:.2f}"


def markdown_table(title: str, columns: tuple[str, ...], rows) -> str:
    """A markdown table under `## title`: `columns` names its columns, those of numbers (right-aligned)
    ending in ':'; `rows` are its rows' cells."""
    lines = [
        f"\n## {title}\n",
        _markdown_row(c.removesuffix(":") for c in columns),
        "|" + "".join("---:|" if c.endswith(":") else "---|" for c in columns),
    ]
    return "\n".join(lines + [_markdown_row(cells) for cells in rows])


def timing_table(title: str, columns: tuple[str, ...], results: list[Result], labels, numbers) -> str:
    """`markdown_table` of timed cases: a result's row is its `labels(r)` cells, then its `numbers(r)`,
    or for a case that failed, its error in the first number column and the others left empty."""

    def row(r: Result) -> tuple[str, ...]:
        first = tuple(labels(r))
        return first + (
            numbers(r) if not r.error else (f"failed: {r.error}",) + ("",) * (len(columns) - len(first) - 1)
        )

    return markdown_table(title, columns, [row(r) for r in results])


def _markdown_row(cells) -> str:
    return "|" + "".join(f" {c} |" if c != "" else " |" for c in cells)


class Worker:
    def __init__(self, case: Case, threads: int):
        env = child_env(KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2", BENCH_THREADS=str(threads), **case.env)
        env["XLA_FLAGS"] = cpu_flags.merge(env.get("XLA_FLAGS", ""), case.xla_flags)
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", json.dumps(case.payload())],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )

    def ask(self, msg: dict | None = None) -> dict:
        if msg is not None:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.log.seek(0)
            raise RuntimeError(self.log.read()[-2000:].strip() or f"exit code {self.proc.returncode}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


def measure(
    cases: list[Case], repeats: int, steps: int, threads: int, say=lambda s: print(s, file=sys.stderr, flush=True)
) -> list[Result]:
    """Builds every case, then times `steps` steps per case per round for `repeats` rounds."""
    results, live = [Result(c) for c in cases], []
    try:
        for r in results:
            worker = Worker(r.case, threads)
            try:
                r.info = worker.ask()
                live.append((r, worker))
                say(f"  built {r.case.label}: first step {r.info['first_step_s']:.1f}s")
            except RuntimeError as e:
                lines = str(e).splitlines()
                r.error = next((x for x in reversed(lines) if "Error" in x or "Exception" in x), lines[-1])
                worker.close()
                say(f"  {r.case.label} failed: {r.error}")
        for i in range(repeats):
            for r, worker in live:
                reply = worker.ask({"steps": steps, "warm": 1})
                r.images_per_s.append(steps * r.case.images_per_step / reply["seconds"])
                r.images_per_cpu_s.append(steps * r.case.images_per_step / reply["cpu_seconds"])
            say(f"  round {i + 1}/{repeats}: " + ", ".join(f"{r.case.label} {r.images_per_s[-1]:.1f}" for r, _ in live))
        for r, worker in live:
            r.memory = worker.ask({"memory": True})
    finally:
        for _, worker in live:
            worker.close()
    return results
