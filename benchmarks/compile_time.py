"""Start-up cost: build + compile + first step, cold and with JAX's persistent compilation cache.

Two fresh worker processes share a new cache directory: the first compiles and fills it, the
second (a "second start", e.g. a resumed run) reads the compiled step back.
"""

from __future__ import annotations

import tempfile

from benchmarks.throughput import Case, Worker


def start_times(model: str, threads: int) -> dict[str, float]:
    """{'cold': s, 'cached': s, 'step': s}: build + first step of each start, and one later step."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {"JAX_COMPILATION_CACHE_DIR": cache, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
        for start in ("cold", "cached"):
            worker = Worker(Case(start, "jaxvision", model, env=env), threads)
            try:
                info = worker.ask()
                out[start] = info["build_s"] + info["first_step_s"]
                out["step"] = worker.ask({"steps": 1})["seconds"]
            finally:
                worker.close()
    return out
