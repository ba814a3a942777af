"""One measured case in its own process, driven over stdin/stdout by `benchmarks.throughput`.

Each framework (and each XLA flag setting) lives in a process of its own, so their thread
pools never compete inside one process, a framework's import never leaks into another's
timing (Keras pulls TensorFlow in; jaxvision's step must not), and memory is per case.

Protocol, one JSON object per line: the parent sends the case on the command line, then
{"steps": n, "warm": k} to run k steps untimed and time n more (reply {"seconds": wall,
"cpu_seconds": this process's CPU time, all threads}), and finally {"memory": true} (reply
{"peak_mb": ...}). Every reply is a single line on stdout; library chatter goes to stderr.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import psutil


class RssSampler:
    """Peak resident memory while steps run, above the level after imports (CPU runs)."""

    def __init__(self, period_s: float = 0.005):
        self.process = psutil.Process()
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self.period_s = period_s
        self.running = False

    def __enter__(self):
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()

    def _loop(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.period_s)

    def peak_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def framework_module(name: str):
    """The module whose `build_case(case)` returns (run(n), device_peak_mb(), info)."""
    if name == "jaxvision":
        from benchmarks import jaxvision_side

        return jaxvision_side
    if name == "torch":
        from benchmarks import peers_torch

        return peers_torch
    if name == "keras":
        from benchmarks import peers_keras

        return peers_keras
    raise ValueError(f"Unknown framework {name!r}.")


def main() -> None:
    case = json.loads(sys.argv[1])
    reply = sys.stdout
    sys.stdout = sys.stderr  # keep the protocol channel clean of library prints
    module = framework_module(case["framework"])
    sampler = RssSampler()  # after the imports: what the model and its step add
    t0 = time.perf_counter()
    run, device_peak_mb, info = module.build_case(case)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run(1)  # compiles (jax, keras) or warms the allocator (torch)
    first_s = time.perf_counter() - t0
    run(1)  # a step whose inputs are a step's outputs may compile again
    print(json.dumps({"build_s": build_s, "first_step_s": first_s, **info}), file=reply, flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        if "steps" in msg:
            if msg.get("warm"):
                run(msg["warm"])
            with sampler:
                t0, cpu0 = time.perf_counter(), time.process_time()
                run(msg["steps"])
                seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
            print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds}), file=reply, flush=True)
        elif "memory" in msg:
            device = device_peak_mb()
            print(
                json.dumps(
                    {
                        "peak_mb": device if device is not None else sampler.peak_mb(),
                        "memory_kind": "device" if device is not None else "host RSS",
                    }
                ),
                file=reply,
                flush=True,
            )
            return


if __name__ == "__main__":
    main()
