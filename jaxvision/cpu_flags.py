"""The XLA:CPU flags every jaxvision process starts with, unless the user's XLA_FLAGS names them.

XLA:CPU sends NHWC float32 convolutions to YNNPACK by default. On the CPUs measured here its
Eigen convolutions are as fast or faster on every model of the project (InceptionV3's training
step 1.07x, its inference 1.08x, the paper-B models 1.03-1.15x; benchmarks/RESULTS.md "XLA:CPU
flags"), so YNNPACK's convolutions are turned off. The flags reach only XLA:CPU's compiler: GPU
and TPU programs are unchanged.

XLA reads XLA_FLAGS once, when its first backend starts, so `import jaxvision` sets them before
anything has run. A flag the user writes wins over ours by name, e.g.
`XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=+individual_convolution` gives XLA's own default back.
"""

from __future__ import annotations

import os

DEFAULTS = ("--xla_cpu_experimental_ynn_fusion_type=-individual_convolution",)


def _name(flag: str) -> str:
    return flag.split("=", 1)[0]


def merge(base: str, override: str) -> str:
    """`base`'s flags that `override` does not name, then `override`'s, as one XLA_FLAGS string."""
    named = {_name(f) for f in override.split()}
    return " ".join([f for f in base.split() if _name(f) not in named] + override.split())


def install(environ=os.environ) -> None:
    """Puts DEFAULTS under the flags already in `environ`'s XLA_FLAGS."""
    environ["XLA_FLAGS"] = merge(" ".join(DEFAULTS), environ.get("XLA_FLAGS", ""))
