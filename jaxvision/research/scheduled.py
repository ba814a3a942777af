"""A suite's runs as single-core processes, as many at once as the machine has cores (CPU only).

On 2 cores one quickstart run uses them at 1.5x the speed of one core (its ops are small and
many), so two runs side by side, one core each, finish 1.2-1.3x sooner than one after the other
(benchmarks/RESULTS.md "The quickstart's runs side by side"). Every run, and the report after
them, computes on one core: XLA splits some sums by its thread count, so this is also what
makes the suite's numbers the same however many cores, and processes, the machine has.

`config.suite.processes` asks for it: 0 (one process per core) or N (at most N at once); absent,
the runs go one after the other in this process, as they always do on an accelerator, in a
multi-process job, or where jax would find a GPU or TPU plugin (unless JAX_PLATFORMS=cpu).
A run starts once the run it starts from (`init.workdir`) has finished. Each run's output goes
to its sub-workdir's log.txt; SIGTERM and Ctrl-C stop every run at its next step, checkpoint
saved, and the suite resumes where each stopped.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import pickle
import signal
import subprocess
import sys
import time

import ml_collections
import tqdm

from jaxvision import supervisor
from jaxvision.main import EXIT_INTERRUPTED
from jaxvision.research import runs

LOG = "log.txt"


def processes(config: ml_collections.ConfigDict) -> int:
    """How many runs of the suite go at once in processes of their own; 0 = in this process."""
    asked = config.suite.get("processes")
    if asked is None or supervisor.multi_process_environment() or not _cpu_only():
        return 0
    if asked < 0:
        raise ValueError(f"config.suite.processes is {asked}: give 0 (one process per core) or a positive count.")
    return asked or len(os.sched_getaffinity(0))


def _cpu_only() -> bool:
    """Whether jax will compute on CPUs only, judged without starting it (a started GPU backend
    would hold the memory the runs need)."""
    if os.environ.get("JAX_PLATFORMS", "").strip().lower() == "cpu":
        return True
    plugins = importlib.metadata.entry_points(group="jax_plugins")
    return not plugins and importlib.util.find_spec("libtpu") is None


@contextlib.contextmanager
def one_core():
    """This process on the first of its cores while jax starts in it (the report's predictions
    then compute as the runs did); its cores come back after."""
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, cores)


class _Running:
    def __init__(self, config, sub: str, slot: int, core: int):
        self.sub, self.slot = sub, slot
        os.makedirs(sub, exist_ok=True)
        self.log_path = os.path.join(sub, LOG)
        with open(self.log_path, "a") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} started on core {core}\n")
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jaxvision.research.worker", sub, str(core)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, TQDM_DISABLE="1"),  # bars of several runs would overwrite each other
                start_new_session=True,  # Ctrl-C reaches the suite only, which stops each run once
            )
        self.process.stdin.write(pickle.dumps(config))
        self.process.stdin.close()
        self.planned = None if config.get("kind") in runs.UNTRAINED else config.num_epochs

    def progress(self, name: str) -> str:
        """The run's name and, for a trained run, its epochs so far (from its metrics.jsonl)."""
        if self.planned is None:
            return name
        try:
            with open(os.path.join(self.sub, "metrics.jsonl")) as f:
                epochs = sum('"split": "train"' in line for line in f)
        except OSError:
            epochs = 0
        return f"{name} {epochs}/{self.planned}"

    def last_line(self) -> str:
        with open(self.log_path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        said = [line for line in lines if line.startswith("error:")]
        return (said or lines or ["(no output)"])[-1]


def _starts_from(config, found: dict, workdir: str) -> str | None:
    init = config.get("init")
    source = init.get("workdir") if init is not None else None
    return next((n for n in found if source and os.path.join(workdir, n) == source), None)


def run(found: dict[str, ml_collections.ConfigDict], workdir: str, count: int, say) -> str | None:
    """Runs `found` (name -> resolved run config), `count` at once; None when all finished, else
    the line saying which runs a signal stopped. A failed run stops the others (saved) and raises."""
    cores = sorted(os.sched_getaffinity(0))
    waiting, running, done = list(found), {}, set()
    stop: list[str] = []
    failed: tuple[str, str] | None = None

    def ask_to_stop(signum, frame):
        if not stop:
            stop.append(signal.Signals(signum).name)
            for r in running.values():
                r.process.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, ask_to_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    bar = tqdm.tqdm(total=len(found), desc="suite", unit="run", dynamic_ncols=True)
    stopped_runs = []
    try:
        while (waiting and not stop and failed is None) or running:
            free = [i for i in range(count) if i not in {r.slot for r in running.values()}]
            for name in list(waiting):
                if not free or stop or failed is not None:
                    break
                source = _starts_from(found[name], found, workdir)
                if source is not None and source not in done:
                    continue
                waiting.remove(name)
                sub = os.path.join(workdir, name)
                slot = free.pop(0)
                core = cores[slot % len(cores)]
                say(
                    f"[{len(found) - len(waiting)}/{len(found)}] {name}: {found[name].report.row}  ({sub}, core {core})"
                )
                running[name] = _Running(found[name], sub, slot, core)
            time.sleep(0.5)
            for name, r in list(running.items()):
                code = r.process.poll()
                if code is None:
                    continue
                del running[name]
                if code == 0:
                    done.add(name)
                    bar.update(1)
                elif code == EXIT_INTERRUPTED:
                    stopped_runs.append(name)
                    if not stop:  # a signal sent to the run alone stops the suite, as it would one run at a time
                        ask_to_stop(signal.SIGTERM, None)
                elif failed is None:
                    failed = (name, r.last_line())
                    for other in running.values():
                        other.process.send_signal(signal.SIGTERM)
            shown = ", ".join(r.progress(n) for n, r in running.items())
            if shown != bar.postfix:  # redrawn when a run moves on, not twice a second into a log
                bar.set_postfix_str(shown)
    finally:
        bar.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if failed is not None:
        name, line = failed
        raise RuntimeError(
            f"Run {name} of the suite failed ({line}); its whole output is in {os.path.join(workdir, name, LOG)}. "
            "Any other run in progress was stopped with its checkpoint saved: the same command resumes them."
        )
    if stop or stopped_runs:
        return (
            f"Stopped by {stop[0] if stop else 'a signal'}: {', '.join(stopped_runs) or 'no run'} saved their "
            "checkpoints. The suite resumes from there."
        )
    return None
