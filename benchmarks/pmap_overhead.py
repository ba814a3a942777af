"""pmap overhead: jaxvision's step on 4 simulated CPU devices against 1, same global batch.

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python -m benchmarks.pmap_overhead MODEL REPEATS

(run.py sets the flag and JAX_PLATFORMS=cpu, since one GPU cannot be split into four). The two
steps live in one process and are timed alternately; prints JSON {devices: [images/s, ...]}.
On a 2-core machine the 4 "devices" share the same cores, so the ratio is the cost of
splitting the batch, four smaller convolutions and the cross-device reductions, not a speed-up.
"""

from __future__ import annotations

import json
import sys
import time

import jax

from benchmarks import jaxvision_side
from benchmarks.specs import SPECS


def main(model: str, repeats: int) -> None:
    spec = SPECS[model]
    if jax.local_device_count() < 4:
        raise SystemExit("Run with XLA_FLAGS=--xla_force_host_platform_device_count=4.")
    steps = {d: jaxvision_side.train_step(spec, jax.local_devices()[:d]) for d in (1, 4)}
    for step in steps.values():
        step.run(1)
    rates = {d: [] for d in steps}
    for _ in range(repeats):
        for d, step in steps.items():
            t0 = time.perf_counter()
            step.run(1)
            rates[d].append(spec.batch / (time.perf_counter() - t0))
    print(json.dumps(rates))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
