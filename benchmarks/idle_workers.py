"""Does a benchmark worker's step slow down while other workers sit idle beside it?

    python -m benchmarks.idle_workers inception_v3 --others 4 --rounds 4 --steps 2

One worker (the timed one) is built alone and timed; then `--others` more workers of the same
model are built, each runs its warm-up steps and waits, and the timed worker is timed again;
then they are closed and it is timed alone once more. Besides the timed worker's images/s, the
CPU seconds the idle workers used while it ran are given: whether they compete for the cores,
or only for memory. This is what the flags section does when it keeps one worker per flag set
alive (benchmarks/RESULTS.md, "Run-to-run spread").
"""

from __future__ import annotations

import argparse
import os
import statistics

import psutil

from benchmarks.throughput import Case, Worker


def _timed(worker: Worker, case: Case, rounds: int, steps: int) -> list[float]:
    return [steps * case.images_per_step / worker.ask({"steps": steps})["seconds"] for _ in range(rounds)]


def _row(label: str, rates: list[float], idle_cpu_s: float | None) -> str:
    idle = f"{idle_cpu_s:.1f}" if idle_cpu_s is not None else "—"
    return f"| {label} | {statistics.median(rates):.2f} | {min(rates):.2f}-{max(rates):.2f} | {idle} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="inception_v3")
    parser.add_argument("--others", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch intra-op threads, as run.py")
    args = parser.parse_args()
    case = Case("timed", "jaxvision", args.model)
    timed = Worker(case, args.threads)
    timed.ask()
    rows = [_row("alone", _timed(timed, case, args.rounds, args.steps), None)]
    others = [Worker(Case(f"idle {i}", "jaxvision", args.model), args.threads) for i in range(args.others)]
    try:
        for worker in others:
            worker.ask()
        processes = [psutil.Process(w.proc.pid) for w in others]
        before = sum(sum(p.cpu_times()[:2]) for p in processes)
        rates = _timed(timed, case, args.rounds, args.steps)
        idle_cpu_s = sum(sum(p.cpu_times()[:2]) for p in processes) - before
        rss_gb = sum(p.memory_info().rss for p in processes) / 2**30
        rows.append(_row(f"beside {args.others} idle workers ({rss_gb:.1f} GB resident)", rates, idle_cpu_s))
    finally:
        for worker in others:
            worker.close()
    rows.append(_row("alone again", _timed(timed, case, args.rounds, args.steps), None))
    timed.close()
    print(f"\n#### One {args.model} worker, {args.rounds} rounds of {args.steps} steps\n")
    print("| timed worker | images/s (median) | min-max | CPU seconds of the idle workers meanwhile |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
